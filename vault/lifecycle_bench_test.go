package vault_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/vault"
)

// BenchmarkRetentionScan measures a dry run over 2,000 records: with
// keep_after_create only the creation time is read; with retain_until every
// record's data key is unwrapped and its retain_until opened.
func BenchmarkRetentionScan(b *testing.B) {
	const n = 2000
	for _, mode := range []string{"keep_after_create", "retain_until"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			e := newEnv(b)
			s := &sekisho.Schema{Collection: "bench", Fields: []sekisho.Field{{Name: "a", Type: sekisho.TypeString, Classification: sekisho.ClassOther}}}
			if mode == "keep_after_create" {
				s.Retention = &sekisho.Retention{KeepAfterCreate: "5y"}
			}
			if _, err := e.v.PutSchema(ctx, legal, s); err != nil {
				b.Fatal(err)
			}
			until := time.Now().AddDate(1, 0, 0)
			in := make([]*sekisho.RecordInput, n)
			for i := range in {
				in[i] = &sekisho.RecordInput{Region: "jp", Fields: map[string]json.RawMessage{"a": json.RawMessage(fmt.Sprintf("%q", fmt.Sprint(i)))}}
				if mode == "retain_until" {
					in[i].RetainUntil = &until
				}
			}
			if _, err := e.v.CreateBatch(ctx, operator, "bench", in); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				p, err := e.v.PlanRetention(ctx, operator, "bench", vault.SweepOptions{})
				if err != nil || p.Scanned != n {
					b.Fatalf("plan: %+v %v", p, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}

// BenchmarkDetokenize measures one detokenization of one token: untoken,
// index lookup, and the audited read of one field.
func BenchmarkDetokenize(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	if _, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("email", "bench@example.jp")}); err != nil {
		b.Fatal(err)
	}
	tok, err := e.v.Tokenize(ctx, operator, "users", vault.TokenRequest{Field: "email", Value: json.RawMessage(`"bench@example.jp"`)})
	if err != nil {
		b.Fatal(err)
	}
	req := vault.DetokenizeRequest{Collection: "users", Field: "email", Tokens: []string{tok}}
	for b.Loop() {
		v, err := e.v.Detokenize(ctx, operator, req)
		if err != nil || string(v[0]) != `"bench@example.jp"` {
			b.Fatalf("detokenize: %s %v", v, err)
		}
	}
}
