package sekisho

import (
	"testing"
	"time"
)

func TestExpiry(t *testing.T) {
	created := time.Date(2020, 2, 29, 10, 0, 0, 0, time.UTC)
	byField := &Schema{Retention: &Retention{Field: "last_active", Keep: "730d"}}
	byCreate := &Schema{Retention: &Retention{KeepAfterCreate: "5y"}}
	until := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		s     *Schema
		until time.Time
		value string
		want  time.Time
	}{
		{"no rule", &Schema{}, time.Time{}, "", time.Time{}},
		{"after create", byCreate, time.Time{}, "", time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)},
		{"after field", byField, time.Time{}, `"2024-01-10"`, time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC)},
		{"field not set: after create", byField, time.Time{}, "", time.Date(2022, 2, 28, 10, 0, 0, 0, time.UTC)},
		{"retain_until decides", byCreate, until, "", until},
		{"retain_until without a rule", &Schema{}, until, "", until},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v []byte
			if tc.value != "" {
				v = []byte(tc.value)
			}
			got, err := tc.s.Expiry(created, tc.until, v)
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("Expiry = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
