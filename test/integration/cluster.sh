#!/usr/bin/env bash
# Throw-away PostgreSQL cluster for pgusher's integration tests.
#
#   cluster.sh start    primary 127.0.0.1 + streaming standbys 127.0.0.2, 127.0.0.3
#                       (all on port $PGUSHER_PGPORT, default 15432); reuses a healthy
#                       running cluster, wipes and recreates a stale one
#   cluster.sh stop     stop all three (pg_ctl -m fast) and wipe the directory
#   cluster.sh status   print node states; exit 0 only if the cluster is healthy
#   cluster.sh env      print shell exports for tests: eval "$(cluster.sh env)"
#
# Environment: PGUSHER_CLUSTER_DIR (default /tmp/pgusher-cluster), PGUSHER_PGPORT
# (default 15432), PGUSHER_PGBIN (default: newest /usr/lib/postgresql/*/bin),
# PGUSHER_WAL_LEVEL (default replica; logical for t_replication's pg_recvlogical: a running
# cluster of a lower wal_level is not reused).
# PostgreSQL refuses to run as root: as root everything runs as user postgres.
set -euo pipefail

DIR=${PGUSHER_CLUSTER_DIR:-/tmp/pgusher-cluster}
PORT=${PGUSHER_PGPORT:-15432}
IPS=(127.0.0.1 127.0.0.2 127.0.0.3)
NODES=(n0 n1 n2)
ROLES_SQL_USERS=(u_trust u_md5 u_scram u_plain)
WAL_LEVEL=${PGUSHER_WAL_LEVEL:-replica}

find_pgbin() {
	if [[ -n ${PGUSHER_PGBIN:-} ]]; then
		echo "$PGUSHER_PGBIN"
		return
	fi
	local d best=""
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/pg_ctl ]] && best=$d
	done
	if [[ -z $best ]] && command -v pg_config >/dev/null; then
		best=$(pg_config --bindir)
	fi
	[[ -n $best && -x $best/pg_ctl ]] || {
		echo "cluster.sh: PostgreSQL server binaries not found (install postgresql)" >&2
		exit 1
	}
	echo "$best"
}
PGBIN=$(find_pgbin)

if [[ $(id -u) -eq 0 ]]; then
	PGOS_USER=postgres
	as_pg() { runuser -u postgres -- "$@"; }
else
	PGOS_USER=$(id -un)
	as_pg() { "$@"; }
fi

log() { echo "cluster.sh: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

datadir() { echo "$DIR/$1/data"; }
sockdir() { echo "$DIR/$1/sock"; }
logfile() { echo "$DIR/$1.log"; }

# psql on node $1 (index) via its unix socket, as superuser postgres.
npsql() {
	local i=$1
	shift
	as_pg "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$(sockdir "${NODES[$i]}")" \
		-p "$PORT" -U postgres "$@"
}

node_running() { as_pg "$PGBIN/pg_ctl" status -D "$(datadir "$1")" >/dev/null 2>&1; }

healthy() {
	local i
	[[ -f $DIR/.ready ]] || return 1
	for i in 0 1 2; do
		node_running "${NODES[$i]}" || return 1
	done
	[[ $(npsql 0 -d postgres -c "select pg_is_in_recovery()" 2>/dev/null) == f ]] || return 1
	local wl
	wl=$(npsql 0 -d postgres -c "show wal_level" 2>/dev/null)
	[[ $wl == "$WAL_LEVEL" || ($WAL_LEVEL == replica && $wl == logical) ]] || return 1
	[[ $(npsql 1 -d postgres -c "select pg_is_in_recovery()" 2>/dev/null) == t ]] || return 1
	[[ $(npsql 2 -d postgres -c "select pg_is_in_recovery()" 2>/dev/null) == t ]] || return 1
	[[ $(npsql 0 -d postgres -c "select count(*) from pg_stat_replication where state='streaming'" 2>/dev/null) == 2 ]] || return 1
	[[ $(npsql 0 -d testdb -c "select 1" 2>/dev/null) == 1 ]] || return 1
}

# Stop whatever is left of a previous cluster in $DIR (also postmasters whose data
# directory has been deleted under them: found by their -D argument, killed by pid).
stop_all() {
	local n pid
	for n in "${NODES[@]}"; do
		if [[ -f $(datadir "$n")/postmaster.pid ]]; then
			as_pg "$PGBIN/pg_ctl" stop -D "$(datadir "$n")" -m fast -w -t 30 >/dev/null 2>&1 ||
				as_pg "$PGBIN/pg_ctl" stop -D "$(datadir "$n")" -m immediate -w -t 30 >/dev/null 2>&1 || true
		fi
	done
	for pid in $(pgrep -x postgres 2>/dev/null || true); do
		local cmd
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
		if [[ $cmd == *" -D $DIR/n"[012]"/data"* ]]; then
			log "killing leftover postmaster $pid ($cmd)"
			kill -QUIT "$pid" 2>/dev/null || true
		fi
	done
}

wipe() {
	case $DIR in
	/ | "" | /tmp | /home | /root | /usr* | /etc* | /var) die "refusing to wipe '$DIR'" ;;
	esac
	rm -rf "$DIR"
}

write_conf() { # node ip
	local n=$1 ip=$2
	cat >>"$(datadir "$n")/postgresql.conf" <<EOF

# ---- pgusher test cluster ($n) ----
listen_addresses = '$ip'
port = $PORT
unix_socket_directories = '$(sockdir "$n")'
max_connections = 300
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = $WAL_LEVEL
max_wal_senders = 10
wal_keep_size = 256MB
hot_standby = on
hot_standby_feedback = on
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] $n %q%u@%d '
log_connections = off
EOF
}

start_node() { # node
	local n=$1
	# 9>&-: the postmaster must not inherit (and hold forever) the start/stop lock.
	as_pg "$PGBIN/pg_ctl" start -D "$(datadir "$n")" -l "$(logfile "$n")" -w -t 60 >/dev/null 9>&- ||
		{
			tail -n 30 "$(logfile "$n")" >&2 || true
			die "node $n failed to start (log: $(logfile "$n"))"
		}
}

do_start() {
	if healthy; then
		log "cluster in $DIR already running and healthy: reusing"
		return 0
	fi
	if [[ -e $DIR ]]; then
		log "stale cluster in $DIR: wiping and recreating"
		stop_all
		wipe
	fi
	local i n
	mkdir -p "$DIR"
	for n in "${NODES[@]}"; do mkdir -p "$DIR/$n/sock"; done
	[[ $(id -u) -eq 0 ]] && chown -R postgres:postgres "$DIR"
	chmod 0755 "$DIR"

	# Nothing else may hold our port on our addresses.
	for ip in "${IPS[@]}"; do
		if ss -Hltn "src $ip:$PORT" 2>/dev/null | grep -q .; then
			die "$ip:$PORT is already in use by another process"
		fi
	done

	# Primary.
	log "initdb primary (n0, 127.0.0.1:$PORT)"
	as_pg "$PGBIN/initdb" -D "$(datadir n0)" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
		>"$DIR/initdb.log" 2>&1 || {
		cat "$DIR/initdb.log" >&2
		die "initdb failed"
	}
	write_conf n0 127.0.0.1
	cat >"$(datadir n0)/pg_hba.conf" <<'EOF'
# pgusher test cluster
local   all             all                             trust
host    all             u_md5           127.0.0.0/8     md5
host    all             u_scram         127.0.0.0/8     scram-sha-256
host    all             u_plain         127.0.0.0/8     password
host    all             all             127.0.0.0/8     trust
host    replication     all             127.0.0.0/8     trust
EOF
	start_node n0

	log "creating roles and testdb"
	npsql 0 -d postgres <<'EOF'
SET password_encryption = 'md5';
CREATE ROLE u_md5 LOGIN PASSWORD 'md5pass';
SET password_encryption = 'scram-sha-256';
CREATE ROLE u_scram LOGIN PASSWORD 'scrampass';
CREATE ROLE u_plain LOGIN PASSWORD 'plainpass';
CREATE ROLE u_trust LOGIN;
CREATE DATABASE testdb OWNER postgres;
EOF
	as_pg "$PGBIN/pgbench" -i -s 1 -q -h "$(sockdir n0)" -p "$PORT" -U postgres testdb \
		>"$DIR/pgbench-init.log" 2>&1 || {
		cat "$DIR/pgbench-init.log" >&2
		die "pgbench -i failed"
	}
	local u grants=""
	for u in "${ROLES_SQL_USERS[@]}"; do
		grants+="GRANT ALL ON DATABASE testdb TO $u;
GRANT ALL ON SCHEMA public TO $u;
GRANT ALL ON ALL TABLES IN SCHEMA public TO $u;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO $u;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO $u;
"
	done
	npsql 0 -d testdb <<<"$grants"
	npsql 0 -d postgres -c "GRANT ALL ON SCHEMA public TO PUBLIC" >/dev/null

	# Standbys.
	for i in 1 2; do
		n=${NODES[$i]}
		log "pg_basebackup standby $n (${IPS[$i]}:$PORT)"
		as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -D "$(datadir "$n")" \
			-R -X stream -c fast >"$DIR/basebackup-$n.log" 2>&1 || {
			cat "$DIR/basebackup-$n.log" >&2
			die "pg_basebackup for $n failed"
		}
		write_conf "$n" "${IPS[$i]}"
		# Name the walreceiver so pg_stat_replication tells the standbys apart.
		echo "primary_conninfo = 'host=127.0.0.1 port=$PORT user=postgres application_name=$n'" \
			>>"$(datadir "$n")/postgresql.auto.conf"
		start_node "$n"
	done

	log "waiting for both standbys to stream"
	local deadline=$((SECONDS + 60)) cnt=0
	while ((SECONDS < deadline)); do
		cnt=$(npsql 0 -d postgres -c "select count(*) from pg_stat_replication where state='streaming'" 2>/dev/null || echo 0)
		[[ $cnt == 2 ]] && break
		sleep 0.5
	done
	[[ $cnt == 2 ]] || die "standbys not streaming after 60 s (pg_stat_replication shows $cnt)"
	# Make sure the standbys have replayed the roles and testdb.
	deadline=$((SECONDS + 30))
	for i in 1 2; do
		until [[ $(npsql "$i" -d testdb -c "select count(*) from pg_roles where rolname='u_trust'" 2>/dev/null) == 1 ]]; do
			((SECONDS < deadline)) || die "standby ${NODES[$i]} has not replayed testdb/roles"
			sleep 0.3
		done
	done
	touch "$DIR/.ready"
	[[ $(id -u) -eq 0 ]] && chown postgres:postgres "$DIR/.ready"
	log "cluster ready: primary 127.0.0.1:$PORT, standbys 127.0.0.2:$PORT 127.0.0.3:$PORT (dir $DIR)"
}

do_stop() {
	if [[ -e $DIR ]]; then
		stop_all
		wipe
		log "cluster in $DIR stopped and wiped"
	else
		stop_all
		log "no cluster in $DIR"
	fi
}

do_status() {
	local i n st role ok=0
	for i in 0 1 2; do
		n=${NODES[$i]}
		if node_running "$n"; then
			role=$(npsql "$i" -d postgres -c "select case when pg_is_in_recovery() then 'standby' else 'primary' end" 2>/dev/null || echo "?")
			st="running $role"
		else
			st="stopped"
		fi
		echo "$n ${IPS[$i]}:$PORT $st"
	done
	if node_running n0; then
		echo "streaming standbys: $(npsql 0 -d postgres -c "select count(*) from pg_stat_replication where state='streaming'" 2>/dev/null || echo '?')"
	fi
	if healthy; then
		echo "healthy"
	else
		echo "not healthy"
		ok=1
	fi
	return $ok
}

do_env() {
	cat <<EOF
export PGUSHER_CLUSTER_DIR='$DIR'
export PGUSHER_PGPORT='$PORT'
export PGUSHER_PGBIN='$PGBIN'
export PGUSHER_PRIMARY='127.0.0.1'
export PGUSHER_STANDBY1='127.0.0.2'
export PGUSHER_STANDBY2='127.0.0.3'
export PGUSHER_PRIMARY_SOCK='$(sockdir n0)'
export PGHOST='127.0.0.1'
export PGPORT='$PORT'
export PGUSER='postgres'
export PGDATABASE='testdb'
EOF
}

cmd=${1:-}
case $cmd in
start | stop)
	# Serialise start/stop of the same cluster (the lock lives next to the directory).
	exec 9>"$DIR.lock"
	flock -w 300 9 || die "could not lock $DIR.lock"
	"do_$cmd"
	;;
status) do_status ;;
env) do_env ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
