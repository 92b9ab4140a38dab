#!/usr/bin/env bash
# The lead's quiet-window measurements (sixth session). Logs to /tmp/final/log.
set -u
B=/tmp/final/bench; NEW=/tmp/final/sekisho-main; OLD=/tmp/final/sekisho-9a0fa5e
L=/tmp/final/log
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
run() { local name=$1; shift; say "start $name: $*"; "$@" > /tmp/final/$name.out 2>&1; say "end $name rc=$?"; }
# 1. issue 17: mTLS and DPoP over TLS against floor_tls, 4 rounds pooled, twice
for i in 1 2; do
  run tls-$i $B -bin $NEW -tls -records 1000000 -snapshot /work/snap-i17 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/final/tls-$i
done
# 2. issue 22 point 3: DPoP hot read and half-peak p99, old (9a0fa5e, before the checkpointer) and new alternated
for i in 1 2; do
  for v in old new; do
    bin=$NEW; [[ $v == old ]] && bin=$OLD
    run p99-$v-$i $B -bin $bin -records 1000000 -snapshot /work/snap-idp -rounds 2 -duration 5s -only floor,hot_read,hot_read_half_peak,floor_half_peak -out /tmp/final/p99-$v-$i
  done
done
# 3. issue 22 point 1: import of 1M on SQLite and PostgreSQL
run import-sqlite-1 $B -bin $NEW -records 1000000 -only none -duration 1s -out /tmp/final/import-sqlite-1
DSN=$(cat /tmp/final/pg.dsn)
run import-pg-1 $B -bin $NEW -records 1000000 -only none -duration 1s -store "$DSN" -out /tmp/final/import-pg-1
run import-sqlite-2 $B -bin $NEW -records 1000000 -only none -duration 1s -out /tmp/final/import-sqlite-2
run import-pg-2 $B -bin $NEW -records 1000000 -only none -duration 1s -store "$DSN" -out /tmp/final/import-pg-2
say done
