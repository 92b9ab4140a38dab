#!/usr/bin/env bash
# databunker.sh builds Databunker (the open-source PII vault the bench
# compares with, docs/bench-databunker.md) from source and starts and stops
# throw-away instances of it. Databunker is a measurement peer, not a
# dependency of sekisho: nothing here is in go.mod, and CI does not run it.
#
#   scripts/databunker.sh build [SRC]
#       build $DATABUNKER_DIR/databunker (default /tmp/dbk) from SRC: a git
#       directory of github.com/securitybunker/databunker (default: the
#       mirror in $DATABUNKER_GIT, else a `git clone` of it into
#       $DATABUNKER_DIR/repo.git). Only src/ and databunker.yaml are used.
#   scripts/databunker.sh start DIR [POSTGRES-DSN]
#       init a fresh Databunker in DIR in demo mode (root token DEMO, a
#       random master key in DIR/masterkey) on its default SQLite store
#       (DIR/databunker.db), or in a fresh database of the PostgreSQL
#       cluster of POSTGRES-DSN (postgres://USER@HOST:PORT/...), start it
#       on a free port of 127.0.0.1 and print its URL. DIR/pid holds its
#       process id, DIR/url its URL, DIR/databunker.log its log.
#   scripts/databunker.sh stop DIR
#       stop the instance of DIR (SIGTERM, then SIGKILL after 10 s); a
#       PostgreSQL database it made is dropped.
#
# Then: go run ./bench databunker -url "$(cat DIR/url)" -token DEMO -pid "$(cat DIR/pid)" ...
set -euo pipefail

DIR_BUILD=${DATABUNKER_DIR:-/tmp/dbk}
GIT_DIR_DEFAULT=${DATABUNKER_GIT:-/work/.mirror/securitybunker+databunker/repo}

die() { echo "databunker.sh: $*" >&2; exit 1; }

usage() {
	echo "usage: $0 build [SRC-GIT-DIR] | start DIR [POSTGRES-DSN] | stop DIR" >&2
	exit 2
}

build() {
	local src=${1:-$GIT_DIR_DEFAULT}
	mkdir -p "$DIR_BUILD"
	if [[ ! -d $src ]]; then
		src=$DIR_BUILD/repo.git
		if [[ ! -d $src ]]; then
			git clone --bare https://github.com/securitybunker/databunker "$src" >&2 || die "git clone failed"
		fi
	fi
	rm -rf "$DIR_BUILD/src" "$DIR_BUILD/ui"
	# src, the config and ui/ without its GeoLite2 country database (a
	# large blob that may be missing from a mirror; git archive still
	# names it on stderr). Databunker refuses to start without that file
	# (initGeoIP), yet the API never reads it (only the web UI's pages ask
	# for a visitor's country), so an empty MaxMind DB stands in for it.
	git -C "$src" archive HEAD src databunker.yaml ui ':(exclude)ui/site/GeoLite2-Country.mmdb' 2> >(grep -v GeoLite2 >&2) |
		tar -x -C "$DIR_BUILD" || die "git archive of $src failed"
	git -C "$src" rev-parse HEAD >"$DIR_BUILD/commit"
	empty_mmdb "$DIR_BUILD/ui/site/GeoLite2-Country.mmdb"
	# src/storage and src/utils are modules of their own, required at a
	# published version: build them from this tree instead.
	(cd "$DIR_BUILD/src" &&
		go mod edit -replace github.com/securitybunker/databunker/src/storage=./storage \
			-replace github.com/securitybunker/databunker/src/utils=./utils &&
		go mod tidy >&2 &&
		go build -o "$DIR_BUILD/databunker" .) || die "go build failed"
	echo "$DIR_BUILD/databunker (commit $(cat "$DIR_BUILD/commit"))"
}

# empty_mmdb writes a valid MaxMind DB (format 2.0) with no networks in it:
# a one-node search tree whose records both mean "not found", the 16-byte
# separator, an empty data section and the metadata map.
empty_mmdb() {
	python3 - "$1" <<'PY' || die "writing an empty GeoIP database failed"
import struct, sys, time
def s(v):
    b = v.encode(); return bytes([0x40 | len(b)]) + b
def u16(v): return bytes([0xa2]) + struct.pack(">H", v)
def u32(v): return bytes([0xc4]) + struct.pack(">I", v)
def u64(v): return bytes([0x08, 0x02]) + struct.pack(">Q", v)
def arr(items): return bytes([len(items), 0x04]) + b"".join(items)
def m(pairs): return bytes([0xe0 | len(pairs)]) + b"".join(s(k) + v for k, v in pairs)
meta = m([("binary_format_major_version", u16(2)), ("binary_format_minor_version", u16(0)),
          ("build_epoch", u64(int(time.time()))), ("database_type", s("GeoLite2-Country")),
          ("description", m([("en", s("empty stand-in"))])),
          ("ip_version", u16(6)), ("languages", arr([s("en")])), ("node_count", u32(1)),
          ("record_size", u16(24))])
tree = (1).to_bytes(3, "big") * 2  # node 0: left and right both = node_count, no data
open(sys.argv[1], "wb").write(tree + bytes(16) + b"\xab\xcd\xefMaxMind.com" + meta)
PY
}

free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	die "no free port found"
}

start() {
	local dir=$1 dsn=${2:-} bin=$DIR_BUILD/databunker port db conf
	[[ -x $bin ]] || die "no $bin: run $0 build first"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[[ ! -f $dir/pid ]] || ! kill -0 "$(cat "$dir/pid")" 2>/dev/null || die "an instance runs in $dir (stop it first)"
	port=$(free_port)
	# The shipped config, listening on loopback at our port (the file wins
	# over BUNKER_PORT) and without its TLS certificate paths.
	conf=$dir/databunker.yaml
	sed -e 's/^  host: .*/  host: "127.0.0.1"/' -e "s/^  port: .*/  port: $port/" \
		-e '/ssl_certificate/d' "$DIR_BUILD/databunker.yaml" >"$conf"
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/masterkey"
	export DATABUNKER_MASTERKEY
	DATABUNKER_MASTERKEY=$(cat "$dir/masterkey")
	rm -f "$dir/pgdb"
	if [[ -n $dsn ]]; then
		# Databunker's PostgreSQL store reads PGSQL_* and connects with
		# lib/pq, which takes PGSSLMODE from the environment.
		local rest=${dsn#postgres://} hostport
		export PGSQL_USER_NAME=${rest%%@*}
		rest=${rest#*@}
		hostport=${rest%%/*}
		export PGSQL_HOST=${hostport%%:*} PGSQL_PORT=${hostport##*:} PGSSLMODE=disable
		db=databunker_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
		psql -q "$dsn" -c "CREATE DATABASE $db" || die "CREATE DATABASE $db failed"
		echo "$dsn $db" >"$dir/pgdb"
	else
		db=$dir/databunker.db
		rm -f "$db"
	fi
	"$bin" -demoinit -db "$db" -conf "$conf" >"$dir/init.log" 2>&1 || die "databunker -demoinit failed; see $dir/init.log"
	"$bin" -start -db "$db" -conf "$conf" >"$dir/databunker.log" 2>&1 &
	echo $! >"$dir/pid"
	echo "http://127.0.0.1:$port" >"$dir/url"
	for _ in $(seq 1 120); do
		if curl -fsS "http://127.0.0.1:$port/v1/status" >/dev/null 2>&1; then
			cat "$dir/url"
			return
		fi
		kill -0 "$(cat "$dir/pid")" 2>/dev/null || die "databunker exited; see $dir/databunker.log"
		sleep 0.5
	done
	die "databunker did not answer /v1/status; see $dir/databunker.log"
}

stop() {
	local dir=$1 pid dsn db
	[[ -f $dir/pid ]] || die "no $dir/pid"
	pid=$(cat "$dir/pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 1 20); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	fi
	rm -f "$dir/pid"
	if [[ -f $dir/pgdb ]]; then
		read -r dsn db <"$dir/pgdb"
		psql -q "$dsn" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || echo "databunker.sh: drop database $db failed" >&2
		rm -f "$dir/pgdb"
	fi
}

case ${1:-} in
build) [[ $# -le 2 ]] || usage; build "${2:-}" ;;
start) [[ $# -ge 2 && $# -le 3 ]] || usage; start "$2" "${3:-}" ;;
stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
*) usage ;;
esac
