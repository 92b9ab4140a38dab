package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/audit"
)

// auditCommitCollector exports how long the audit logs' store commits
// take, the durable write every request that writes an audit event waits
// for before it is answered: sekisho_audit_commit_seconds{log}, log
// "default" or a region's code.
type auditCommitCollector struct {
	desc *prometheus.Desc
	logs map[string]*audit.Log
}

func newAuditCommitCollector(def *audit.Log, regions map[string]*audit.Log) auditCommitCollector {
	logs := map[string]*audit.Log{"default": def}
	for r, l := range regions {
		logs[r] = l
	}
	return auditCommitCollector{
		desc: prometheus.NewDesc("sekisho_audit_commit_seconds",
			"Store commits of the audit log's writer by how long they took (one durable write for each group of appends).", []string{"log"}, nil),
		logs: logs,
	}
}

func (c auditCommitCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c auditCommitCollector) Collect(ch chan<- prometheus.Metric) {
	for name, l := range c.logs {
		h := l.CommitLatency()
		buckets := make(map[float64]uint64, len(h.Bounds))
		var n uint64
		for i, b := range h.Bounds {
			n += h.Counts[i]
			buckets[b.Seconds()] = n
		}
		n += h.Counts[len(h.Bounds)]
		ch <- prometheus.MustNewConstHistogram(c.desc, n, h.Sum.Seconds(), buckets, name)
	}
}
