#!/usr/bin/env bash
# Twelfth session: the suspect's week over the 100M partitioned lean log, cold and warm,
# before and after `sekisho audit cluster --month 2023-07`. Needs root.
set -u
export BIN=/tmp/incident-s12.test DBN=scope100m N=100000000 R=${R:-3}
DB=$(sed "s#/postgres?#/scope100m?#" /work/notes/scope.dsn)
q() { psql -qtA "$DB" -c "$1"; }
echo "== partitions"; q "select c.relname, pg_size_pretty(pg_relation_size(c.oid)), pg_size_pretty(pg_total_relation_size(c.oid)) from pg_inherits i join pg_class c on c.oid=i.inhrelid where i.inhparent='audit_entries'::regclass order by 1"
echo "== suspect's July rows on pages (before)"; q "select count(*), count(distinct (ctid::text::point)[0]) from audit_entries_2023_07 where principal='mallory'"
/work/ab11/cold.sh 2>&1 | sed 's/^/unclustered /'
df -h /work | tail -1
echo "== cluster $(date -u +%T)"
/usr/bin/time -f "cluster wall %e s, max rss %M KB" /tmp/sekisho-s12 audit cluster --store "$DB&maintenance_work_mem=8GB" --month 2023-07 --format json 2>&1
df -h /work | tail -1
echo "== suspect's July rows on pages (after)"; q "select count(*), count(distinct (ctid::text::point)[0]) from audit_entries_2023_07 where principal='mallory'"
/work/ab11/cold.sh 2>&1 | sed 's/^/clustered /'
