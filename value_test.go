package sekisho

import (
	"testing"
)

func TestDecodeRecordInput(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", `{"region":"jp","fields":{"phone":"+819012345678"}}`, true},
		{"unknown key", `{"region":"jp","fields":{},"owner":"x"}`, false},
		{"no fields", `{"region":"jp"}`, false},
		{"trailing data", `{"region":"jp","fields":{}} {}`, false},
		{"duplicate field", `{"region":"jp","fields":{"phone":"a","phone":"b"}}`, false},
		{"duplicate top key", `{"region":"jp","region":"th","fields":{}}`, false},
		{"not json", `region=jp`, false},
		{"array", `[]`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRecordInput([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("DecodeRecordInput(%s) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}
