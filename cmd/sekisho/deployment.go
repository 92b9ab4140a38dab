package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/regions"
	"github.com/sekisho/sekisho/sqlite"
)

// deployment names the stores of a deployment for the commands that read
// it offline (audit, incident, report): the default store of a data
// directory or a PostgreSQL URL, and with --config FILE the regions: map of
// the same file serve runs with.
type deployment struct {
	data, store string
	regions     map[string]string
}

// fromConfig fills what the command line did not set from a configuration
// file (data, store, regions).
func (d *deployment) fromConfig(path string, dataSet, storeSet bool) error {
	if path == "" {
		return nil
	}
	c, err := loadConfig(path)
	if err != nil {
		return err
	}
	if !dataSet && c.Data != "" {
		d.data = c.Data
	}
	if !storeSet && c.Store != "" {
		d.store = c.Store
	}
	d.regions = c.Regions
	return nil
}

// openReadOnlyStore opens one store for reading: the SQLite of the data
// directory ("" or "sqlite") or of sqlite:PATH read-only and without the
// directory's lock, or a PostgreSQL URL.
func openReadOnlyStore(ctx context.Context, data, url string) (sekisho.Store, error) {
	var path string
	switch {
	case url == "" || url == "sqlite":
		if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("data directory %s does not exist (give --data DIR)", data)
		}
		path = filepath.Join(data, dbFile)
	case strings.HasPrefix(url, "sqlite:"):
		path = sqlitePath(data, url)
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		st, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", redactDSN(url), err)
		}
		return st, nil
	default:
		return nil, fmt.Errorf("store %q: want a postgres:// URL, sqlite:PATH, or nothing for the embedded SQLite", redactDSN(url))
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	st, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return st, nil
}

// open opens the deployment read-only: the default store alone, or a
// regions.Router over it and each region's store (regions.LogStores lists
// every audit log of it).
func (d *deployment) open(ctx context.Context) (sekisho.Store, error) {
	def, err := openReadOnlyStore(ctx, d.data, d.store)
	if err != nil {
		return nil, err
	}
	if len(d.regions) == 0 {
		return def, nil
	}
	by := map[string]sekisho.Store{}
	for _, region := range slices.Sorted(maps.Keys(d.regions)) {
		url := d.regions[region]
		if url == d.store {
			continue
		}
		s, err := openReadOnlyStore(ctx, d.data, url)
		if err != nil {
			def.Close()
			for _, o := range by {
				o.Close()
			}
			return nil, fmt.Errorf("region %s: %w", region, err)
		}
		by[region] = s
	}
	return regions.NewRouter(def, by), nil
}
