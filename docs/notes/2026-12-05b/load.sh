#!/usr/bin/env bash
# Loads the 100M-event lean log into the partitioned audit_entries (migration 4) of database scope100m.
set -u
cd /work/main/incident
DB=$(sed "s#/postgres?#/scope100m?#" /work/notes/scope.dsn)
SEKISHO_BENCH_SCOPE_PG=$DB SEKISHO_BENCH_SCOPE_N=100000000 SEKISHO_BENCH_SCOPE_COPY=1 SEKISHO_BENCH_SCOPE_LEAN=1 SEKISHO_BENCH_SCOPE_SUSPECT=42000 \
  /usr/bin/time -v /tmp/incident-s12.test -test.run - -test.bench ScopePostgres -test.benchtime 1x -test.timeout 0
