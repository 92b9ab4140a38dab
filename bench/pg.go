package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// freshDatabase creates an empty database in the cluster of dsn, so that a
// run never mixes with another run's records or audit log, and returns its
// DSN and a function that drops it.
func freshDatabase(ctx context.Context, dsn string) (string, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("--store: %w", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "sekisho_bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s (the bench needs a role that may create databases): %w", name, err)
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			logf("drop database %s: %v", name, err)
		}
	}
	return u.String(), drop, nil
}

// pgServerCPU returns a function that reads the CPU seconds spent so far by
// the PostgreSQL cluster of dsn when it runs on this machine: its
// postmaster's own and its exited children's (which it has waited for:
// the backends of finished connections) plus its live children's. ok is
// false when the cluster is elsewhere or /proc does not show it.
func pgServerCPU(ctx context.Context, dsn string) (read func() (float64, bool), ok bool) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, false
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return nil, false
	}
	f, err := statFields(backend)
	if err != nil || len(f) < 2 {
		return nil, false
	}
	postmaster, err := strconv.Atoi(f[1]) // field 4, ppid
	if err != nil {
		return nil, false
	}
	read = func() (float64, bool) {
		f, err := statFields(postmaster)
		if err != nil || len(f) < 15 {
			return 0, false
		}
		ticks := 0.0
		for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			v, _ := strconv.ParseFloat(f[i], 64)
			ticks += v
		}
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", postmaster, postmaster))
		for _, c := range strings.Fields(string(children)) {
			pid, _ := strconv.Atoi(c)
			if cf, err := statFields(pid); err == nil && len(cf) >= 13 {
				u, _ := strconv.ParseFloat(cf[11], 64)
				s, _ := strconv.ParseFloat(cf[12], 64)
				ticks += u + s
			}
		}
		return ticks / clockTicks, true
	}
	if _, ok := read(); !ok {
		return nil, false
	}
	return read, true
}

// statFields returns the fields of /proc/PID/stat after the command name:
// f[0] is field 3 (state), f[1] field 4 (ppid), f[11] field 14 (utime).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("unexpected /proc stat format")
	}
	return strings.Fields(string(b[i+1:])), nil
}
