#!/usr/bin/env bash
# Cold and warm scope of one principal's week. Env: BIN (incident test binary),
# DBN (database name), N (events), R (rounds). Needs root; cluster in /work/scopepg.
set -u
cd /work/main
R=${R:-2}
DB=$(sed "s#/postgres?#/$DBN?#" /work/notes/scope.dsn)
d=/work/scopepg
q() { psql -qtA "$DB" -c "$1"; }
pmcpu() { local pid; pid=$(head -1 $d/data/postmaster.pid)
  awk '{ i=index($0,")"); split(substr($0,i+2),f," "); printf "%.2f", (f[12]+f[13]+f[14]+f[15])/100 }' /proc/$pid/stat; }
snap() { echo "$(q "select blks_read, round(blk_read_time) from pg_stat_database where datname=current_database()")"; }
run() {
  local c0 out; c0=$(pmcpu)
  out=$( (cd incident && SEKISHO_BENCH_SCOPE_PG=$DB SEKISHO_BENCH_SCOPE_N=$N SEKISHO_BENCH_SCOPE_COPY=1 SEKISHO_BENCH_SCOPE_LEAN=1 SEKISHO_BENCH_SCOPE_SUSPECT=42000 \
    /usr/bin/time -f "client_cpu %U+%S wall %e" $BIN -test.run - -test.bench ScopePostgres -test.benchtime $1 -test.timeout 0 2>&1 | grep -E "ms/scope|client_cpu" | sed 's/BenchmarkScopePostgres-2 *//; s/ns.op.*events.scope//') )
  echo "$out" | tr '\n' ' '; echo " server_cpu $(awk -v a=$c0 -v b=$(pmcpu) 'BEGIN{printf "%.2f", b-a}')"
}
for round in $(seq 1 $R); do
  scripts/pg.sh stop $d >/dev/null; sync; echo 3 > /proc/sys/vm/drop_caches; scripts/pg.sh start $d >/dev/null
  b=$(snap); echo "== $(basename $BIN) cold $round $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) $(run 1x) blks(before) $b after $(snap)"
  echo "== $(basename $BIN) warm $round $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) $(run 3x)"
done
