package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/gen"
)

// The answers below are the bodies Databunker's handlers write
// (utils.ReturnUUID, ReturnError, EnforceAuth, auditEventListAll).
func TestParseBunkerAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		token   string
		total   int64
		wantErr string
	}{
		{"create", 200, `{"status":"ok","token":"b6046dcd-f345-3ce7-c340-e2e6a8b43ab2"}`, "b6046dcd-f345-3ce7-c340-e2e6a8b43ab2", -1, ""},
		{"read", 200, `{"status":"ok","token":"f6ae","data":{"email":"c@b.example"}}`, "f6ae", -1, ""},
		{"audit total", 200, `{"status":"ok","total":5,"rows":[]}`, "", 5, ""},
		{"duplicate", 405, `{"status":"error","message":"duplicate index: email"}`, "", -1, "status 405: duplicate index: email"},
		{"locked", 405, `{"status":"error","message":"internal error"}`, "", -1, "status 405: internal error"},
		{"bad token", 403, `Access denied`, "", -1, "status 403: Access denied"},
		{"200 but error", 200, `{"status":"error","message":"x"}`, "", -1, `status 200 but "error": x`},
		{"200 not JSON", 200, `OK`, "", -1, "not a JSON answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseBunkerAnswer(tc.status, []byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Token != tc.token {
				t.Errorf("token %q, want %q", a.Token, tc.token)
			}
			if tc.total >= 0 && (a.Total == nil || *a.Total != tc.total) {
				t.Errorf("total %v, want %d", a.Total, tc.total)
			}
			if tc.total < 0 && a.Total != nil {
				t.Errorf("total %d in an answer without one", *a.Total)
			}
		})
	}
}

// A generated user goes to Databunker flat, with the fields it indexes
// (email, phone) at the top level and nothing lost.
func TestBunkerUserBody(t *testing.T) {
	u := gen.New(1).User()
	b, err := bunkerUserBody(u.Fields)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != len(u.Fields) {
		t.Errorf("%d fields, want %d", len(m), len(u.Fields))
	}
	for _, k := range []string{"email", "phone", "display_name"} {
		if string(m[k]) != string(u.Fields[k]) {
			t.Errorf("%s = %s, want %s", k, m[k], u.Fields[k])
		}
	}
}

// Every create of a run has its own email and phone (Databunker refuses a
// repeated one), different from the generated users' phones, and keeps the
// pooled user's other fields; the pool is left as it was.
func TestUniqueCreateBody(t *testing.T) {
	pool := createPool(2)
	if len(pool) != 10_000 {
		t.Fatalf("pool of %d", len(pool))
	}
	orig := string(pool[0]["email"])
	emails, phones := map[string]bool{}, map[string]bool{}
	for seq := uint32(1); seq <= 1000; seq++ {
		b, err := uniqueCreateBody(pool[0], 123, seq)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		email, _ := m["email"].(string)
		phone, _ := m["phone"].(string)
		if emails[email] || phones[phone] {
			t.Fatalf("seq %d repeats an email or phone: %s %s", seq, email, phone)
		}
		emails[email], phones[phone] = true, true
		if !strings.HasPrefix(phone, "+8150000123") || len(phone) != len("+8150")+13 {
			t.Errorf("phone %q", phone)
		}
		if !strings.HasSuffix(email, "."+strings.Trim(orig, `"`)) {
			t.Errorf("email %q does not keep the pooled user's %s", email, orig)
		}
		var d string
		json.Unmarshal(pool[0]["display_name"], &d)
		if m["display_name"] != d {
			t.Errorf("display_name %q, want %q", m["display_name"], d)
		}
	}
	if string(pool[0]["email"]) != orig {
		t.Error("uniqueCreateBody changed the pooled user")
	}
	// The generator's phones (jp 070/080/090, th, tw, id) never start
	// with +8150, so a create never collides with a loaded user.
	g := gen.New(1)
	for range 5000 {
		var p string
		json.Unmarshal(g.User().Fields["phone"], &p)
		if strings.HasPrefix(p, "+8150") {
			t.Fatalf("generated phone %s has the creates' prefix", p)
		}
	}
}
