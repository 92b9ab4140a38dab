#!/usr/bin/env bash
# Migration 4 at 5M events: a full (not lean) log loaded by b3ed117's scope bench (schema 3),
# then `sekisho migrate` of bfcff35 (partitions the log), timed; then the scope with the new build.
set -u
DB=$(sed "s#/postgres?#/mig5m?#" /work/notes/scope.dsn)
psql -qtA "$(cat /work/notes/scope.dsn)" -c "DROP DATABASE IF EXISTS mig5m" -c "CREATE DATABASE mig5m"
cd /work/main/incident
SEKISHO_BENCH_SCOPE_PG=$DB SEKISHO_BENCH_SCOPE_N=5000000 SEKISHO_BENCH_SCOPE_COPY=1 SEKISHO_BENCH_SCOPE_SUSPECT=42000 \
  /tmp/incident-main.test -test.run - -test.bench ScopePostgres -test.benchtime 1x -test.timeout 0 2>&1 | grep -E "built|copied|vacuum|ms/scope|log |database"
psql -qtA "$DB" -c "select max(version) from schema_migrations" -c "select count(*), pg_size_pretty(pg_total_relation_size('audit_entries')) from audit_entries"
echo "== migrate $(date -u +%T)"
/usr/bin/time -f "migrate wall %e s" /tmp/sekisho-s12 migrate --store "$DB&maintenance_work_mem=1GB" 2>&1
psql -qtA "$DB" -c "select max(version) from schema_migrations" -c "select c.relname, pg_get_expr(c.relpartbound, c.oid), pg_size_pretty(pg_total_relation_size(c.oid)) from pg_inherits i join pg_class c on c.oid=i.inhrelid where i.inhparent='audit_entries'::regclass order by 1" -c "select count(*) from audit_entries"
SEKISHO_BENCH_SCOPE_PG=$DB SEKISHO_BENCH_SCOPE_N=5000000 SEKISHO_BENCH_SCOPE_COPY=1 SEKISHO_BENCH_SCOPE_SUSPECT=42000 \
  /tmp/incident-s12.test -test.run - -test.bench ScopePostgres -test.benchtime 3x -test.timeout 0 2>&1 | grep -E "ms/scope|log "
