package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzConfigFile: any configuration file is refused with an error naming
// the file, or loads and applies to serve's flags (a value a flag refuses
// is an error naming the key); what loads, written back as YAML, loads to
// the same settings.
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("addr: 127.0.0.1:9000\ndata: /srv/sekisho\nregions:\n  jp: postgres://db-tokyo/sekisho\n"))
	f.Add([]byte("adress: x\n"))
	f.Add([]byte("checkpoint_interval: forever\n"))
	f.Add([]byte("regions: [1, 2]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("---\n...\n"))
	f.Add([]byte("data: !!binary AAAA\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "sekisho.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) && !strings.HasPrefix(err.Error(), "read config") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		cmd := newServeCmd()
		if err := applyConfig(cmd.Flags(), c); err != nil && !strings.HasPrefix(err.Error(), "config ") {
			t.Fatalf("apply: %v", err)
		}
		b, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal %+v: %v", c, err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		back, err := loadConfig(p)
		if err != nil {
			t.Fatalf("written back as %q, it does not load: %v", b, err)
		}
		// Compared as YAML: an empty map and a missing one are the same setting.
		b2, err := yaml.Marshal(back)
		if err != nil || string(b2) != string(b) {
			t.Fatalf("round trip changed the settings: %s, then %s (%v)", b, b2, err)
		}
	})
}
