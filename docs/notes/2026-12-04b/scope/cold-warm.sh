#!/usr/bin/env bash
# cold/warm scope with CPU and I/O: $1 label (5m), $2 N, $3 rounds
set -u
cd /work/wt/idb
L=$1; N=$2; R=${3:-2}
DB=$(cat /tmp/idb-scope${L}.dsn)
d=/tmp/idb-scopepg
q() { psql -qtA "$DB" -c "$1"; }
pmcpu() { # postmaster's own + reaped children's CPU seconds
  local pid; pid=$(head -1 $d/data/postmaster.pid)
  awk '{ i=index($0,")"); split(substr($0,i+2),f," "); printf "%.2f", (f[12]+f[13]+f[14]+f[15])/100 }' /proc/$pid/stat
}
snap() { echo "$(q "select blks_read, blks_hit, round(blk_read_time) from pg_stat_database where datname=current_database()")|$(q "select string_agg(relname||':'||heap_blks_read||'/'||coalesce(idx_blks_read,0), ' ' order by relname) from pg_statio_user_tables where relname in ('audit_entries','records','audit_orgs','audit_records')")"; }
run() {
  local t0 c0 out
  c0=$(pmcpu)
  out=$( (cd incident && SEKISHO_BENCH_SCOPE_PG=$DB SEKISHO_BENCH_SCOPE_N=$N SEKISHO_BENCH_SCOPE_COPY=1 SEKISHO_BENCH_SCOPE_SUSPECT=42000 \
    /usr/bin/time -f "client_cpu %U+%S wall %e" /tmp/idb-incident.test -test.run - -test.bench ScopePostgres -test.benchtime $1 -test.timeout 0 2>&1 | grep -E "ms/scope|client_cpu") )
  echo "$out" | tr '\n' ' '; echo " server_cpu $(awk -v a=$c0 -v b=$(pmcpu) 'BEGIN{printf "%.2f", b-a}')"
}
for round in $(seq 1 $R); do
  scripts/pg.sh stop $d >/dev/null; sync; echo 3 > /proc/sys/vm/drop_caches; scripts/pg.sh start $d >/dev/null
  echo "== cold $round $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "before $(snap)"; run 1x; echo "after  $(snap)"
  echo "== warm $round $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "before $(snap)"; run 1x; echo "after  $(snap)"
done
