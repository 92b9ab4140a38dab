package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "sekisho.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := loadConfig(write("addr: 127.0.0.1:9000\ndata: /srv/sekisho\nregions:\n  jp: postgres://db-tokyo/sekisho\n"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := newServeCmd()
	if err := cmd.Flags().Parse([]string{"--addr", "127.0.0.1:9999"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(cmd.Flags(), c); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("addr").Value.String(); got != "127.0.0.1:9999" {
		t.Errorf("addr = %s: the command line must win over the file", got)
	}
	if got := cmd.Flags().Lookup("data").Value.String(); got != "/srv/sekisho" {
		t.Errorf("data = %s, want the file's", got)
	}
	if c.Regions["jp"] != "postgres://db-tokyo/sekisho" {
		t.Errorf("regions = %v", c.Regions)
	}
	if _, err := loadConfig(write("adress: 127.0.0.1:9000\n")); err == nil || !strings.Contains(err.Error(), "adress") {
		t.Errorf("a misspelt key was accepted: %v", err)
	}
	c, err = loadConfig(write("retention_interval: 1m\n"))
	if err != nil {
		t.Fatal(err)
	}
	cmd = newServeCmd()
	if err := applyConfig(cmd.Flags(), c); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("retention-interval").Value.String(); got != "1m0s" {
		t.Errorf("retention-interval = %s, want the file's 1m", got)
	}
	bad, _ := loadConfig(write("checkpoint_interval: soon\n"))
	if err := applyConfig(newServeCmd().Flags(), bad); err == nil {
		t.Error("a bad duration was accepted")
	}
}

// TestServeChecksAuditExport: a sink the audit_export section gets wrong
// (an unknown type, an unknown key) stops serve before anything is opened,
// with an error naming it; the same file with the sink right parses.
func TestServeChecksAuditExport(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, sink, want string }{
		{"unknown type", "{name: siem, type: kafka, address: siem:9092}", `type "kafka"`},
		{"unknown key", "{name: siem, type: json-lines, address: siem:6514, tls: false}", "field tls not found"},
		{"plain otlp", "{name: otel, type: otlp, endpoint: http://collector:4318/v1/logs}", "want an https URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(conf, []byte("audit_export:\n  sinks:\n    - "+tc.sink+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(dir, "data")
			_, stderr, code := run(t, "serve", "--config", conf, "--data", data, "--addr", "127.0.0.1:0", "--metrics-addr", "")
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q: want a failure naming %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(data); err == nil {
				t.Fatal("serve created the data directory before refusing its configuration")
			}
		})
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("audit_export:\n  cursor_dir: /c\n  sinks:\n    - {name: siem, type: syslog, address: 'siem:6514', facility: 10, poll_interval: 2s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := configAuditExport(good)
	if err != nil || c.CursorDir != "/c" || len(c.Sinks) != 1 || *c.Sinks[0].Facility != 10 || c.Sinks[0].PollInterval.Seconds() != 2 {
		t.Fatalf("configAuditExport = %+v, %v", c, err)
	}
}
