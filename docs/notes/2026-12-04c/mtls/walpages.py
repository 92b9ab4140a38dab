#!/usr/bin/env python3
"""Which B-trees one hot-read group commit writes (WAL frames by table/index).

Usage: walpages.py COPY_OF_A_SEKISHO_DB   (e.g. a copy of the sqlite
BenchmarkHotReadWrites1M template: SEKISHO_BENCH_HOT1M=DIR keeps it)

With audit_nodes_low (the i17-lownodes branch) levels 0-3 go there.
Appends 50 commits of 8 hot-read events each, with the tree nodes the
appends complete (level 0 for each leaf, level l when the leaf closes a
subtree of 2^l), as sqlite.AppendAudit writes them, with checkpoints off;
then reads the WAL's frame headers (page numbers, commit markers) and maps
the pages to their B-trees with dbstat. The first 10 commits are skipped.
"""
import json, os, sqlite3, struct, sys, time
from collections import Counter

db = sys.argv[1]
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
size = c.execute("SELECT COALESCE(MAX(idx)+1, 0) FROM audit_events").fetchone()[0]

LOW = any(r[0] == "audit_nodes_low" for r in c.execute("SELECT name FROM sqlite_schema"))

def node(level, idx):
    if LOW and level < 4:
        c.execute("INSERT OR REPLACE INTO audit_nodes_low (end, level, hash) VALUES (?,?,?)", (((idx + 1) << level) - 1, level, os.urandom(32)))
    else:
        c.execute("INSERT OR REPLACE INTO audit_nodes (level, idx, hash) VALUES (?,?,?)", (level, idx, os.urandom(32)))

def commit(size, n=8):
    c.execute("BEGIN IMMEDIATE")
    now = int(time.time() * 1e6)
    for i in range(n):
        idx = size + i
        rid = "%012x" % int(time.time() * 1000) + os.urandom(10).hex()
        c.execute("INSERT INTO audit_events (idx, leaf, time, request_id, org, principal, device, decision, records, record_orgs) VALUES (?,?,?,?,?,?,?,?,?,?)",
                  (idx, os.urandom(600), now, rid, "operator", "bench-svc-mtls-%d" % (idx % 16), "dev-bench-svc-mtls-%d" % (idx % 16), "allow",
                   json.dumps(["u" + os.urandom(8).hex()]), '["operator"]'))
        node(0, idx)
        level, j = 0, idx
        while j % 2 == 1:
            level, j = level + 1, j // 2
            node(level, j)
    c.execute("COMMIT")
    return size + n

for _ in range(50):
    size = commit(size)
ps = c.execute("PRAGMA page_size").fetchone()[0]
w = open(db + "-wal", "rb").read()
commits, cur, off = [], [], 32
while off + 24 + ps <= len(w):
    pg, dbsize = struct.unpack(">II", w[off:off + 8])
    cur.append(pg)
    if dbsize:
        commits.append(cur)
        cur = []
    off += 24 + ps
commits = commits[10:]
pages = sorted({p for cm in commits for p in cm})
name = dict((p, n) for n, p in c.execute("SELECT name, pageno FROM dbstat WHERE pageno IN (%s)" % ",".join(map(str, pages))))
tot = Counter(name.get(p, "?") for cm in commits for p in cm)
print("commits %d, WAL frames per commit %.1f" % (len(commits), sum(map(len, commits)) / len(commits)))
for k, v in tot.most_common():
    print("  %-20s %5.2f pages per commit" % (k, v / len(commits)))
