#!/usr/bin/env bash
# pg.sh starts and stops a throw-away PostgreSQL cluster for tests.
#
#   scripts/pg.sh start DIR   initdb + pg_ctl start into DIR on a free port of
#                             127.0.0.1 (trust auth) and print the DSN
#   scripts/pg.sh stop DIR    stop the cluster in DIR (DIR is left for you to remove)
#   scripts/pg.sh standby PRIMARY-DIR DIR
#                             a synchronous streaming standby of PRIMARY-DIR's
#                             cluster in DIR (pg_basebackup -R); prints its DSN
#   scripts/pg.sh kill9 DIR   SIGKILL the cluster's postmaster (a crash)
#   scripts/pg.sh promote DIR promote the standby in DIR (pg_ctl promote)
#
# It uses Debian's binaries (/usr/lib/postgresql/*/bin, the newest version),
# installing the postgresql package with apt-get when they are missing and we
# are root. PostgreSQL refuses to run as root, so as root the cluster runs as
# the user sekisho-ci (created if needed), which owns DIR.
#
# Typical use:
#   export SEKISHO_TEST_POSTGRES=$(scripts/pg.sh start /tmp/pg)
#   go test ./postgres/
#   scripts/pg.sh stop /tmp/pg
set -euo pipefail

PG_USER=${SEKISHO_PG_USER:-sekisho-ci}

die() { echo "pg.sh: $*" >&2; exit 1; }

usage() {
	echo "usage: $0 start DIR | stop DIR | standby PRIMARY-DIR DIR | kill9 DIR | promote DIR" >&2
	exit 2
}

# pg_bindir prints the bin directory of the newest installed PostgreSQL.
pg_bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n | tail -n 1 || true)
	if [[ -z $d ]]; then
		if [[ $(id -u) -ne 0 ]]; then
			die "no PostgreSQL in /usr/lib/postgresql/*/bin; install it (apt-get install postgresql) or run as root"
		fi
		echo "pg.sh: installing postgresql with apt-get" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2 ||
			{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; } ||
			die "apt-get install postgresql failed"
		d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n | tail -n 1 || true)
		[[ -n $d ]] || die "postgresql installed but no /usr/lib/postgresql/*/bin"
	fi
	echo "$d"
}

# as_pg runs a command as the cluster's owner.
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		if command -v runuser >/dev/null; then
			runuser -u "$PG_USER" -- "$@"
		else
			su -s /bin/sh "$PG_USER" -c "$(printf '%q ' "$@")"
		fi
	else
		"$@"
	fi
}

# free_port prints a TCP port of 127.0.0.1 that nothing listens on, below
# the kernel's ephemeral range (where the tests' own connections and
# listeners take their ports, so a port free a moment ago may be bound by
# the time the postmaster binds it).
free_port() {
	local port low=32768
	if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
		read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	fi
	((low > 20000 + 2000)) || low=50000
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % (low - 20000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	die "no free port found"
}

start() {
	local dir=$1 bin port user
	bin=$(pg_bindir)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [[ -f $dir/data/postmaster.pid ]]; then
		die "a cluster seems to be running in $dir (stop it first: $0 stop $dir)"
	fi
	if [[ $(id -u) -eq 0 ]]; then
		if ! id "$PG_USER" >/dev/null 2>&1; then
			useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" ||
				die "useradd $PG_USER failed"
		fi
		chown -R "$PG_USER" "$dir"
		# The owner must be able to reach DIR through its parents.
		local p=$dir
		while [[ $p != / ]]; do
			p=$(dirname "$p")
			if ! runuser -u "$PG_USER" -- test -x "$p" 2>/dev/null; then
				die "$PG_USER cannot enter $p; choose a DIR under a world-searchable path such as /tmp"
			fi
		done
		user=$PG_USER
	else
		user=$(id -un)
	fi
	if [[ ! -f $dir/data/PG_VERSION ]]; then
		as_pg "$bin/initdb" -D "$dir/data" -U "$user" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			as_pg "$bin/initdb" -D "$dir/data" -U "$user" --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
			die "initdb failed; see $dir/initdb.log"
	fi
	# A restarted cluster keeps its port, so its clients reconnect to it.
	local kept=
	if [[ -f $dir/port ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$dir/port")") 2>/dev/null; then
		port=$(cat "$dir/port")
		kept=1
	else
		port=$(free_port)
	fi
	# Sockets go to DIR, not /var/run/postgresql, which may not exist or be
	# ours. A port taken between free_port and the postmaster's bind (another
	# cluster started at the same moment) gets another port, a few times.
	local try
	for try in 1 2 3 4 5; do
		if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
			-o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null; then
			break
		fi
		# (Read whole first: with pipefail, tail | grep -q fails when grep
		# stops reading early.)
		local last
		last=$(tail -n 20 "$dir/postgres.log" 2>/dev/null || true)
		if [[ -n $kept || $try -eq 5 || ($last != *"could not bind"* && $last != *"already in use"*) ]]; then
			die "pg_ctl start failed; see $dir/postgres.log"
		fi
		echo "pg.sh: port $port was taken; trying another" >&2
		port=$(free_port)
	done
	echo "$port" >"$dir/port"
	local ok=
	for _ in $(seq 1 60); do
		if as_pg "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
			ok=1
			break
		fi
		sleep 0.5
	done
	[[ -n $ok ]] || die "PostgreSQL did not become ready; see $dir/postgres.log"
	echo "postgres://$user@127.0.0.1:$port/postgres?sslmode=disable"
}

stop() {
	local dir=$1 bin
	[[ -d $dir/data ]] || die "no cluster in $dir"
	bin=$(pg_bindir)
	if [[ ! -f $dir/data/postmaster.pid ]]; then
		echo "pg.sh: cluster in $dir is not running" >&2
		return 0
	fi
	as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || die "pg_ctl stop failed"
}

# standby makes DIR a synchronous streaming standby of the running cluster in
# PRIMARY (pg_basebackup -R), starts it on a free port, makes the primary wait
# for it on every commit (synchronous_standby_names), waits until it is in
# sync and prints its DSN.
standby() {
	local primary=$1 dir=$2 bin pport port user
	bin=$(pg_bindir)
	primary=$(cd "$primary" && pwd)
	pport=$(cat "$primary/port")
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [[ $(id -u) -eq 0 ]]; then
		chown -R "$PG_USER" "$dir"
		user=$PG_USER
	else
		user=$(id -un)
	fi
	as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$pport" -U "$user" -D "$dir/data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 ||
		die "pg_basebackup failed; see $dir/basebackup.log"
	port=$(free_port)
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
		-o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200 -c cluster_name=sekisho_standby" start >/dev/null ||
		die "pg_ctl start (standby) failed; see $dir/postgres.log"
	echo "$port" >"$dir/port"
	as_pg "$bin/psql" -q -h 127.0.0.1 -p "$pport" -U "$user" -d postgres \
		-c "ALTER SYSTEM SET synchronous_standby_names = 'sekisho_standby'" -c "SELECT pg_reload_conf()" >/dev/null ||
		die "set synchronous_standby_names failed"
	for _ in $(seq 1 120); do
		if [[ $(as_pg "$bin/psql" -qtA -h 127.0.0.1 -p "$pport" -U "$user" -d postgres \
			-c "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == 1 ]]; then
			echo "postgres://$user@127.0.0.1:$port/postgres?sslmode=disable"
			return
		fi
		sleep 0.25
	done
	die "the standby in $dir did not become synchronous"
}

# kill9 SIGKILLs the postmaster of the cluster in DIR (a crash, no shutdown).
kill9() {
	local dir=$1 pid
	pid=$(head -n 1 "$dir/data/postmaster.pid") || die "no postmaster.pid in $dir/data"
	kill -KILL "$pid"
}

# promote turns the standby in DIR into a primary (pg_ctl promote).
promote() {
	local dir=$1 bin
	bin=$(pg_bindir)
	as_pg "$bin/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null || die "pg_ctl promote failed"
}

case ${1:-} in
start) [[ $# -eq 2 ]] || usage; start "$2" ;;
stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
standby) [[ $# -eq 3 ]] || usage; standby "$2" "$3" ;;
kill9) [[ $# -eq 2 ]] || usage; kill9 "$2" ;;
promote) [[ $# -eq 2 ]] || usage; promote "$2" ;;
*) usage ;;
esac
