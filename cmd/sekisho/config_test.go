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
