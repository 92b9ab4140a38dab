package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/storetest"
)

func openBench(b *testing.B) *postgres.Store {
	b.Helper()
	s, err := postgres.Open(b.Context(), pgtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkCreateRecords measures an import batch of 500 records.
func BenchmarkCreateRecords(b *testing.B) {
	s := openBench(b)
	const batch = 500
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		recs := make([]*sekisho.SealedRecord, batch)
		for j := range recs {
			recs[j] = storetest.NewRecord("users", fmt.Sprintf("r%08d-%04d", i, j), "acme", "jp")
		}
		if err := s.CreateRecords(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendAudit measures a group commit of audit events: 8 (the hot
// read's groups at 16 connections) and 64.
func BenchmarkAppendAudit(b *testing.B) {
	for _, batch := range []uint64{8, 64} {
		b.Run(fmt.Sprintf("events=%d", batch), func(b *testing.B) {
			s := openBench(b)
			var next uint64
			for b.Loop() {
				if err := s.AppendAudit(b.Context(), storetest.Entries(next, int(batch)), nil); err != nil {
					b.Fatal(err)
				}
				next += batch
			}
			b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkQueryAudit measures the incident-scope queries over a log of
// 50,000 events from 500 principals and 40 orgs.
func BenchmarkQueryAudit(b *testing.B) {
	s := openBench(b)
	const n, batch = 50000, 1000
	for from := uint64(0); from < n; from += batch {
		es := storetest.Entries(from, batch)
		for i := range es {
			k := from + uint64(i)
			es[i].Principal = fmt.Sprint("p", k%500)
			es[i].Device = fmt.Sprint("d", k%700)
			es[i].Org = fmt.Sprint("org", k%40)
			es[i].RecordOrgs = []string{fmt.Sprint("org", k%23)}
		}
		if err := s.AppendAudit(b.Context(), es, nil); err != nil {
			b.Fatal(err)
		}
	}
	since := storetest.At(10000)
	until := since.Add(2 * time.Hour)
	for _, bc := range []struct {
		name string
		f    sekisho.AuditFilter
	}{
		{"PrincipalWindow", sekisho.AuditFilter{Principal: "p42", Since: since, Until: until}},
		{"DeviceWindow", sekisho.AuditFilter{Device: "d42", Since: since, Until: until}},
		{"OrgWindow", sekisho.AuditFilter{Org: "org7", Since: since, Until: until}},
		{"OrgPage", sekisho.AuditFilter{Org: "org7", From: 40000, Limit: 100}},
		{"Record", sekisho.AuditFilter{Record: "r4242"}},
		{"RequestID", sekisho.AuditFilter{RequestID: "req-4242"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.QueryAudit(b.Context(), bc.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
