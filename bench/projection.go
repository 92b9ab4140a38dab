package main

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The case's 194 million users by region (issue 22 point 2): each region's
// store is its own database, loaded in parallel on its own machine, so the
// whole load takes as long as the largest region's.
var caseRegions = []struct {
	Region  string
	Records int64
}{{"jp", 93_000_000}, {"th", 53_000_000}, {"tw", 22_000_000}, {"id", 8_000_000}}

// projection is the 194M projection from this run's import: time at the
// measured rate (and at the CPU-bound rate of two dedicated cores), disk at
// the measured bytes per record.
type projection struct {
	Basis          string             `json:"basis"`
	BytesPerRecord float64            `json:"bytes_per_record"`
	Regions        []projectionRegion `json:"regions"`
	TotalRecords   int64              `json:"total_records"`
	WallHours      float64            `json:"wall_hours"`      // the largest region at the measured rate
	CPUBoundHours  float64            `json:"cpu_bound_hours"` // the same at 2 dedicated cores' worth of the measured CPU per record
	TotalDiskGiB   float64            `json:"total_disk_gib"`
	// The regional figures (issue 22) sum to 176M, not 194M: the same
	// projection scaled to 194M in the same proportions.
	Scaled194MWallHours     float64 `json:"scaled_194m_wall_hours"`
	Scaled194MCPUBoundHours float64 `json:"scaled_194m_cpu_bound_hours"`
	Scaled194MDiskGiB       float64 `json:"scaled_194m_disk_gib"`
}

type projectionRegion struct {
	Region        string  `json:"region"`
	Records       int64   `json:"records"`
	Hours         float64 `json:"hours"`
	CPUBoundHours float64 `json:"cpu_bound_hours"`
	DiskGiB       float64 `json:"disk_gib"`
}

func project(store string, imp *importResult, storeBytes int64) *projection {
	if imp == nil || imp.RecordsPerS <= 0 || imp.Records <= 0 {
		return nil
	}
	cpu := fmt.Sprintf("%.3f CPU s per 1k records", imp.CPUsPer1k)
	if imp.ServerCPUsPer1k > 0 {
		cpu = fmt.Sprintf("%.3f CPU s per 1k records (import %.3f + PostgreSQL server %.3f)", imp.CPUsPer1k+imp.ServerCPUsPer1k, imp.CPUsPer1k, imp.ServerCPUsPer1k)
	}
	p := &projection{Basis: fmt.Sprintf("%s import of %d records: %.0f records/s, %s, %d bytes on disk",
		store, imp.Records, imp.RecordsPerS, cpu, storeBytes),
		BytesPerRecord: float64(storeBytes) / float64(imp.Records)}
	cpuRate := 0.0
	if perRecord := imp.CPUsPer1k + imp.ServerCPUsPer1k; perRecord > 0 {
		// records/s on 2 dedicated cores (for PostgreSQL the import's and
		// the server's CPU, when the bench could read the server's)
		cpuRate = 2 / (perRecord / 1000)
	}
	for _, r := range caseRegions {
		pr := projectionRegion{Region: r.Region, Records: r.Records,
			Hours:   float64(r.Records) / imp.RecordsPerS / 3600,
			DiskGiB: float64(r.Records) * p.BytesPerRecord / (1 << 30)}
		if cpuRate > 0 {
			pr.CPUBoundHours = float64(r.Records) / cpuRate / 3600
		}
		p.Regions = append(p.Regions, pr)
		p.TotalRecords += r.Records
		p.WallHours = max(p.WallHours, pr.Hours)
		p.CPUBoundHours = max(p.CPUBoundHours, pr.CPUBoundHours)
		p.TotalDiskGiB += pr.DiskGiB
	}
	f := 194e6 / float64(p.TotalRecords)
	p.Scaled194MWallHours, p.Scaled194MCPUBoundHours, p.Scaled194MDiskGiB = p.WallHours*f, p.CPUBoundHours*f, p.TotalDiskGiB*f
	return p
}

func (p *projection) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n194M projection (%s; each region's store loaded in parallel, so the load takes the largest region's time):\n\n", p.Basis)
	b.WriteString("| region | records | hours at the measured rate | hours CPU-bound on 2 dedicated cores | disk GiB |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, r := range p.Regions {
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.0f |\n", r.Region, r.Records, r.Hours, r.CPUBoundHours, r.DiskGiB)
	}
	fmt.Fprintf(&b, "| all (parallel) | %d | %.1f | %.1f | %.0f |\n", p.TotalRecords, p.WallHours, p.CPUBoundHours, p.TotalDiskGiB)
	fmt.Fprintf(&b, "| 194M in the same proportions | 194000000 | %.1f | %.1f | %.0f |\n", p.Scaled194MWallHours, p.Scaled194MCPUBoundHours, p.Scaled194MDiskGiB)
	b.WriteString("\n(The regional figures sum to 176M; the last row scales them to 194M.)\n")
	return b.String()
}

// storeSize is the bytes the store holds: the SQLite files of the data
// directory, or the PostgreSQL database's size.
func storeSize(ctx context.Context, dsn, dataDir string) (int64, error) {
	if dsn != "" {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return 0, err
		}
		defer c.Close(ctx)
		var n int64
		err = c.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
		return n, err
	}
	var n int64
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".db") {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

func storeName(dsn string) string {
	if dsn != "" {
		return "PostgreSQL"
	}
	return "SQLite"
}
