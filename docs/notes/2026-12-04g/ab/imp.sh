#!/usr/bin/env bash
# usage: imp.sh TAG BIN... : for each round, for each binary: fresh dir, import users, partners, employees; wall per collection
set -u
export SEKISHO_MASTER_KEY=$(cat /tmp/mk.txt)
rounds=${ROUNDS:-3}
tag=$1; shift
for i in $(seq $rounds); do
  for b in "$@"; do
    d=/tmp/impab-$tag; rm -rf $d; mkdir $d
    line="$tag $(basename $b) $i load $(cut -d' ' -f1 /proc/loadavg)"
    tot=0
    for c in users partners employees; do
      s=$(date +%s.%N)
      $b import --data $d $c /tmp/g1m/$c.ndjson > /dev/null 2>&1 || echo FAIL
      e=$(date +%s.%N)
      w=$(echo "$e - $s" | bc); tot=$(echo "$tot + $w" | bc)
      line="$line $c=$w"
    done
    echo "$line total=$tot rps=$(echo "1000000 / $tot" | bc)" | tee -a /work/ab10/imp.log
  done
done
