package audit

import (
	"bytes"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

func sampleEvent() sekisho.Event {
	return sekisho.Event{
		Time:       time.Date(2023, 11, 27, 9, 30, 0, 123456789, time.FixedZone("JST", 9*3600)),
		RequestID:  "req-1",
		Org:        "line",
		Principal:  "alice",
		Device:     "dev-1",
		Source:     "10.0.0.7",
		Purpose:    "support",
		Action:     "read",
		Collection: "users",
		Records:    []string{"r1", "r2"},
		Fields:     []string{"name", "phone"},
		Masked:     true,
		Decision:   sekisho.Allow,
		Policy:     "grant/g1",
		Reason:     "granted",
		RecordOrgs: []string{"line"},
	}
}

func TestMarshalGolden(t *testing.T) {
	tests := []struct {
		name string
		ev   sekisho.Event
		want string
	}{
		{
			name: "full",
			ev: func() sekisho.Event {
				e := sampleEvent()
				e.Budget = map[string]int64{"reads": 3, "grant_reads": 10}
				e.Detail = "<x>"
				return e
			}(),
			want: `{"v":1,"time":"2023-11-27T00:30:00.123456Z","request_id":"req-1","org":"line","principal":"alice","device":"dev-1","source":"10.0.0.7","purpose":"support","action":"read","collection":"users","records":["r1","r2"],"fields":["name","phone"],"masked":true,"decision":"allow","policy":"grant/g1","reason":"granted","record_orgs":["line"],"budget":{"grant_reads":10,"reads":3},"detail":"\u003cx\u003e"}`,
		},
		{
			name: "empty slices are [] and optional keys are left out",
			ev:   sekisho.Event{Time: time.Unix(0, 0), Decision: sekisho.Deny},
			want: `{"v":1,"time":"1970-01-01T00:00:00.000000Z","request_id":"","org":"","principal":"","device":"","source":"","purpose":"","action":"","collection":"","records":[],"fields":[],"masked":false,"decision":"deny","policy":"","reason":"","record_orgs":[]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sekisho.MarshalEvent(tt.ev)
			if string(got) != tt.want {
				t.Fatalf("Marshal:\n got %s\nwant %s", got, tt.want)
			}
			back, err := sekisho.UnmarshalEvent(got)
			if err != nil {
				t.Fatal(err)
			}
			if again := sekisho.MarshalEvent(back); !bytes.Equal(again, got) {
				t.Fatalf("not a fixed point:\n got %s\nwant %s", again, got)
			}
		})
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	good := string(sekisho.MarshalEvent(sampleEvent()))
	tests := []struct {
		name, in string
	}{
		{"not json", "hello"},
		{"unknown key", `{"v":1,"time":"2023-01-01T00:00:00Z","decision":"allow","extra":1}`},
		{"bad version", `{"v":2,"time":"2023-01-01T00:00:00Z","decision":"allow"}`},
		{"no version", `{"time":"2023-01-01T00:00:00Z","decision":"allow"}`},
		{"bad time", `{"v":1,"time":"yesterday","decision":"allow"}`},
		{"bad decision", `{"v":1,"time":"2023-01-01T00:00:00Z","decision":"maybe"}`},
		{"trailing data", good + `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sekisho.UnmarshalEvent([]byte(tt.in)); err == nil {
				t.Fatalf("Unmarshal(%s) succeeded", tt.in)
			}
		})
	}
}

func TestEntryColumns(t *testing.T) {
	ev := sampleEvent()
	leaf := sekisho.MarshalEvent(ev)
	e := Entry(ev, leaf)
	if e.Principal != "alice" || e.Org != "line" || e.Device != "dev-1" || e.Decision != sekisho.Allow || e.RequestID != "req-1" {
		t.Fatalf("Entry columns: %+v", e)
	}
	if e.Time.Location() != time.UTC || e.Time.Nanosecond() != 123456000 {
		t.Fatalf("Entry time %v is not canonical", e.Time)
	}
	if checkEntry(e) != "" {
		t.Fatalf("checkEntry: %s", checkEntry(e))
	}
	e.Principal = "mallory"
	if checkEntry(e) == "" {
		t.Fatal("checkEntry missed a changed principal column")
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(sekisho.MarshalEvent(sampleEvent()))
	f.Add([]byte(`{"v":1,"time":"2023-01-01T00:00:00+09:00","decision":"deny","budget":{}}`))
	f.Add([]byte(`{"v":1,"time":"2023-01-01T00:00:00Z","decision":"allow","records":null,"detail":"\ud800"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := sekisho.UnmarshalEvent(b)
		if err != nil {
			return
		}
		m := sekisho.MarshalEvent(ev)
		ev2, err := sekisho.UnmarshalEvent(m)
		if err != nil {
			t.Fatalf("Unmarshal(sekisho.MarshalEvent(ev)) failed: %v\n%s", err, m)
		}
		if m2 := sekisho.MarshalEvent(ev2); !bytes.Equal(m, m2) {
			t.Fatalf("canonical form is not a fixed point:\n%s\n%s", m, m2)
		}
	})
}
