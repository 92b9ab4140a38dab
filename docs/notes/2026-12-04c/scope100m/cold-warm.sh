#!/usr/bin/env bash
# Cold and warm scope of one principal's week over the 100M-event lean log.
# $1 rounds. Needs root (drops the page cache) and the cluster in /work/scopepg.
set -u
cd "$(dirname "$0")/../../../.."
R=${1:-2}
DB=$(sed 's#/postgres?#/scope100m?#' /work/notes/scope.dsn)
d=/work/scopepg
q() { psql -qtA "$DB" -c "$1"; }
pmcpu() { # postmaster's own + reaped children's CPU seconds
  local pid; pid=$(head -1 $d/data/postmaster.pid)
  awk '{ i=index($0,")"); split(substr($0,i+2),f," "); printf "%.2f", (f[12]+f[13]+f[14]+f[15])/100 }' /proc/$pid/stat
}
snap() { echo "$(q "select blks_read, blks_hit, round(blk_read_time) from pg_stat_database where datname=current_database()")|$(q "select string_agg(relname||':'||heap_blks_read||'/'||coalesce(idx_blks_read,0), ' ' order by relname) from pg_statio_user_tables where relname in ('audit_entries','records')")"; }
run() {
  local c0 out
  c0=$(pmcpu)
  out=$( (cd incident && SEKISHO_BENCH_SCOPE_PG=$DB SEKISHO_BENCH_SCOPE_N=100000000 SEKISHO_BENCH_SCOPE_COPY=1 SEKISHO_BENCH_SCOPE_LEAN=1 SEKISHO_BENCH_SCOPE_SUSPECT=42000 \
    /usr/bin/time -f "client_cpu %U+%S wall %e" ${BIN:-/tmp/incident.test} -test.run - -test.bench ScopePostgres -test.benchtime $1 -test.timeout 0 2>&1 | grep -E "ms/scope|client_cpu|suspect's week") )
  echo "$out" | tr '\n' ' '; echo " server_cpu $(awk -v a=$c0 -v b=$(pmcpu) 'BEGIN{printf "%.2f", b-a}')"
}
for round in $(seq 1 $R); do
  scripts/pg.sh stop $d >/dev/null; sync; echo 3 > /proc/sys/vm/drop_caches; scripts/pg.sh start $d >/dev/null
  echo "== cold $round $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "before $(snap)"; run 1x; echo "after  $(snap)"
  echo "== warm $round $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "before $(snap)"; run 3x; echo "after  $(snap)"
done
