#!/usr/bin/env bash
set -u
L=/work/ab10/final.log
say() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a $L; }
DSN=$(cat /tmp/pg10.dsn)
say start fin-sq; /tmp/ab/bench-fin -bin /tmp/ab/sekisho-fin -records 1000000 -out /tmp/ab/fin-sq > /tmp/ab/fin-sq.out 2>&1; say end fin-sq rc=$?
say start fin-tls; /tmp/ab/bench-fin -bin /tmp/ab/sekisho-fin -tls -records 1000000 -snapshot /work/snap-s10 -rounds 4 -duration 3s -only floor_tls,hot_read,hot_read_mtls -out /tmp/ab/fin-tls > /tmp/ab/fin-tls.out 2>&1; say end fin-tls rc=$?
say start fin-pg; /tmp/ab/bench-fin -bin /tmp/ab/sekisho-fin -records 1000000 -store "$DSN" -out /tmp/ab/fin-pg > /tmp/ab/fin-pg.out 2>&1; say end fin-pg rc=$?
say done
