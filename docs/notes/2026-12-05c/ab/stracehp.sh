#!/bin/bash
# stracehp.sh BIN OUT: half-peak run; strace fsync of the server for 8 s in the half-peak phase
BIN=$1; OUT=$2
/tmp/bench-main -bin $BIN -records 1000000 -snapshot /work/snap-s10 -duration 10s -only floor,hot_read,hot_read_half_peak -out $OUT > $OUT.log 2>&1 &
BP=$!
for i in $(seq 240); do
  P=$(pgrep -f "$BIN serve --addr" | head -1); [ -n "$P" ] && break; sleep 0.5; done
S=$(date +%s)
while [ $(( $(date +%s) - S )) -lt 120 ]; do
  if grep -q '"route":"/v1/collections/{c}/records/{id}"' $OUT/serve.log 2>/dev/null; then break; fi; sleep 0.5; done
sleep 15.5
timeout -s INT 8 strace -f --seccomp-bpf -e trace=fsync,fdatasync -T -ttt -p $P -o $OUT.strace 2>/dev/null
ls -l /proc/$P/fd > $OUT.fds 2>/dev/null
wait $BP
