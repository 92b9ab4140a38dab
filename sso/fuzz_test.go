package sso

import "testing"

// FuzzParseMapping: the sign-in mapping parser never panics, and a
// mapping it accepts maps any claims without panicking.
func FuzzParseMapping(f *testing.F) {
	f.Add([]byte(testMapping), "s1", "Carol.Ng@example.jp", "staff")
	f.Add([]byte("org: operator\nprincipal_claim: sub\n"), "A_b", "", "")
	f.Add([]byte("org: o\nemail_domains: [example.jp]\n"), "s", "a@example.jp", "g")
	f.Add([]byte("{\"org\":\"o\",\"users\":[{\"subject\":\"x\",\"principal\":\"p\"}]}"), "x", "", "g")
	f.Fuzz(func(t *testing.T, b []byte, sub, email, group string) {
		m, err := ParseMapping(b)
		if err != nil {
			return
		}
		m.Map(Claims{Subject: sub, Email: email, EmailVerified: true, PreferredUsername: email, Groups: []string{group}})
	})
}
