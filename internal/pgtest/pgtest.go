// Package pgtest gives tests a fresh PostgreSQL database on a real server.
//
// The server is named by the environment variable SEKISHO_TEST_POSTGRES (a
// DSN of a role that may CREATE DATABASE, for example the one printed by
// scripts/pg.sh start DIR). Without it the tests that need PostgreSQL skip,
// unless SEKISHO_REQUIRE_POSTGRES=1, when they fail: CI sets both, so that
// a missing server cannot pass for a green run.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by DSN.
const (
	EnvServer  = "SEKISHO_TEST_POSTGRES"
	EnvRequire = "SEKISHO_REQUIRE_POSTGRES"
)

// Server returns the DSN of the test server, skipping the test when there is
// none (or failing it when EnvRequire is 1).
func Server(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvServer)
	if dsn == "" {
		const msg = EnvServer + " is not set; to run the PostgreSQL tests: export " + EnvServer + "=$(scripts/pg.sh start /tmp/sekisho-pg)"
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg + " (failing because " + EnvRequire + "=1)")
		}
		t.Skip(msg)
	}
	return dsn
}

// DSN creates a database with a random name on the test server and returns
// its DSN. The database is dropped when the test ends, after the cleanups
// registered later (such as closing the store) have run.
func DSN(t testing.TB) string {
	t.Helper()
	server := Server(t)
	var b [8]byte
	rand.Read(b[:])
	name := "sekisho_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvServer, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// WITH (FORCE) ends connections a test leaked; servers without it
		// (before PostgreSQL 13, CockroachDB) take the plain form.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
				t.Errorf("pgtest: drop database %s: %v", name, err)
			}
		}
	})
	return withDatabase(server, name)
}

// withDatabase returns dsn with its database replaced by name. dsn is a URL
// or a keyword/value string, where a later keyword overrides an earlier one.
func withDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			u.Path = "/" + name
			u.RawPath = ""
			return u.String()
		}
	}
	return dsn + " dbname=" + name
}
