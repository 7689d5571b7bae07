#!/usr/bin/env bash
# Soak and fault drill (issue #10 section 7; not part of CI): for a bounded time, pgusher built
# from this tree relays pgbench in every pool mode, connection churn, slow and never-reading
# clients while standbys are killed, frozen and the pooler reloaded; then it reports failures a
# healthy host could have served, RSS/fds over time and sanitizer reports. Never touches src/.
#
# usage: bash test/soak/soak.sh [--duration S] [--asan] [--keep] [--out DIR] [--sample S]
#                               [--warmup S] [--seed N]
#   --duration S   load time in seconds (default 600); setup and report add about a minute
#   --asan         use the ASan+UBSan build in build-asan/ (built if needed); the sanitizer
#                  reports are written to files (ASAN_OPTIONS/UBSAN_OPTIONS log_path)
#   --keep         leave the test cluster running at the end (it is stopped by default)
#   --out DIR      results go to DIR/<date>-<build>/ (default test/soak/out)
#   --sample S     RSS/fd sampling period (default 5 s)
#   --warmup S     samples before this are warm-up (default: a fifth of --duration, max 60 s)
#   --seed N       seed of the fault schedule (default: random; printed and recorded)
#   --fault-gap A:B  seconds between two faults, at random in A..B (default 12:30)
# Environment: PGUSHER_CLUSTER_DIR (default /tmp/pgc-soak), PGUSHER_PGPORT (default 15445):
# the cluster of test/integration/cluster.sh (primary 127.0.0.1, standbys 127.0.0.2/.3).
#
# The pooler serves six databases: reads_{session,tx,stmt} (both standbys,
# target_session_attrs=standby) and writes_{session,tx,stmt} (the primary), one per pool mode.
# Load (all rate-limited, loopback only), each a loop of bounded rounds until the end:
#   pgbench -S on the three reads entries, -N on writes_session/writes_tx, a BEGIN-free
#   update script on writes_stmt (statement mode refuses transactions), -S on writes_tx;
#   pgbench -C (a new connection per transaction) on reads_tx and writes_session;
#   slow clients: psql sessions pausing 1-4 s between queries (two of them also inside a
#   transaction), each session 10-20 queries, then a new one;
#   never-reading clients (noread.py): big queries (select repeat('x', 1000000)) never read,
#   then a TCP reset, a bad message header + reset, or a plain close.
# Faults, one at a time, every FAULT_MIN..FAULT_MAX s (random), in shuffled groups of three:
#   a standby stopped with pg_ctl -m immediate and restarted 3-10 s later; a standby frozen
#   (SIGSTOP of the postmaster and its children) for 3-10 s then SIGCONT; a SIGHUP reload of
#   pgusher that toggles default_pool_size between 8 and 6. The primary is never faulted.
#
# Counting failures a healthy host could have served (done by report.py, from the time-stamped
# logs and the fault timeline events.log):
#   a failure is one aborted pgbench client ("client N ... aborted"), a pgbench round that had
#   to be killed because it did not end (stuck), a pgbench "failed transactions" count, or a
#   slow-client psql session that ended on an error (psql runs with ON_ERROR_STOP);
#   on writes_* every failure counts (the primary is always up);
#   on reads_* a failure counts unless (a) it came within FAULT_WINDOW s after a standby was
#   killed or frozen (transactions in flight on it, sessions bound to it, or sent to it before
#   the health check could notice: health_check_period + timeout x fall = 4 s, plus the 6 s
#   a slow client may pause before it finds out; 12 s in all), or (b) at that moment no standby
#   had been up for UP_GRACE s (nobody could serve). Failures after the window count: by then
#   the other standby serves. Logins refused to never-reading clients are counted the same way
#   and reported on their own line (a leaked max_client_conn slot shows there first).
set -uo pipefail

SOAK_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$SOAK_DIR/../.." && pwd)
DURATION=600 ASAN=0 KEEP=0 OUT=$SOAK_DIR/out SAMPLE=5 WARMUP="" SEED="" FAULT_GAP=12:30
while (($#)); do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--asan) ASAN=1; shift ;;
	--keep) KEEP=1; shift ;;
	--out) OUT=$2; shift 2 ;;
	--sample) SAMPLE=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--seed) SEED=$2; shift 2 ;;
	--fault-gap) FAULT_GAP=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
[[ $DURATION =~ ^[0-9]+$ ]] && ((DURATION >= 30 && DURATION <= 86400)) ||
	{ echo "soak.sh: --duration must be 30..86400 seconds" >&2; exit 2; }
[[ -n $WARMUP ]] || WARMUP=$((DURATION / 5 < 60 ? DURATION / 5 : 60))
[[ -n $SEED ]] || SEED=$((RANDOM * 32768 + RANDOM))
RANDOM=$SEED

# Bounds of everything (seconds unless said otherwise).
ROUND=20          # one pgbench run; a worker runs rounds until the end
STUCK=60          # a round not ended this long after its -T is killed and counted as stuck
FAULT_MIN=${FAULT_GAP%%:*} # gap between two faults
FAULT_MAX=${FAULT_GAP##*:}
[[ $FAULT_MIN =~ ^[0-9]+$ && $FAULT_MAX =~ ^[0-9]+$ ]] && ((FAULT_MIN >= 5 && FAULT_MAX >= FAULT_MIN)) ||
	{ echo "soak.sh: --fault-gap wants A:B with 5 <= A <= B" >&2; exit 2; }
HOLD_MIN=3        # how long a standby stays killed / frozen
HOLD_MAX=10
MAX_FAULTS=200
FAULT_WINDOW=12   # see "Counting failures" above
UP_GRACE=5
say() { echo "soak: $*" >&2; }

export PGUSHER_CLUSTER_DIR=${PGUSHER_CLUSTER_DIR:-/tmp/pgc-soak}
export PGUSHER_PGPORT=${PGUSHER_PGPORT:-15445}

if ((ASAN)); then
	BUILD=$ROOT/build-asan KIND=asan
	cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DPGUSHER_SANITIZE=ON >/dev/null
else
	BUILD=$ROOT/build KIND=normal
	[[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
say "building pgusher in $BUILD"
cmake --build "$BUILD" -j2 --target pgusher >/dev/null || { say "build failed"; exit 1; }
export PGUSHER_BIN=$BUILD/pgusher PGUSHER_BUILD=$BUILD

mkdir -p "$OUT"
RUN=$(cd "$OUT" && pwd)/$(date +%Y%m%d-%H%M%S)-$KIND
mkdir -p "$RUN/load" "$RUN/sanitizer"
say "results in $RUN (seed $SEED)"
if ((ASAN)); then
	export ASAN_OPTIONS="log_path=$RUN/sanitizer/asan:detect_leaks=1"
	export UBSAN_OPTIONS="log_path=$RUN/sanitizer/ubsan:print_stacktrace=1"
fi

# The cluster (started by lib.sh if it is not healthy) and the pooler helpers.
. "$ROOT/test/integration/lib.sh"
set +e
# shellcheck disable=SC2034 # lib.sh's pgu_start and pgu_stop use them
PGU_LOG=$RUN/pgusher.log PGU_STDERR=$RUN/pgusher.stderr
P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT
ulimit -n 4096 2>/dev/null

WORKERS=() FAULTER="" SAMPLER=""
soak_exit() {
	local rc=$? p i
	set +e
	for p in "${WORKERS[@]}" $FAULTER $SAMPLER; do pgu_kill_tree "$p" TERM; done
	for ((i = 0; i < 50; i++)); do
		local alive=0
		for p in "${WORKERS[@]}" $FAULTER $SAMPLER; do pgu__alive "$p" && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for p in "${WORKERS[@]}" $FAULTER $SAMPLER; do pgu_kill_tree "$p" KILL; done
	for p in "${WORKERS[@]}" $FAULTER $SAMPLER; do wait "$p" 2>/dev/null; done
	if [[ -s $RUN/frozen ]]; then
		# shellcheck disable=SC2046 # a list of pids
		kill -CONT $(cat "$RUN/frozen") 2>/dev/null
		rm -f "$RUN/frozen"
	fi
	pgu_stop || rc=1
	if ((KEEP)); then
		for n in n1 n2; do
			[[ -n $(pgu_node_pids "$n") ]] || pgu_node_start "$n"
		done
		say "cluster left running in $PGUSHER_CLUSTER_DIR (--keep)"
	else
		"$PGU_LIBDIR/cluster.sh" stop >/dev/null 2>&1
	fi
	(exit $rc)
	pgu__exit
}
trap soak_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- pooler
cat >"$RUN/pgusher-body.ini" <<EOF
[databases]
reads_session = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby pool_mode=session
reads_tx = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby pool_mode=transaction
reads_stmt = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby pool_mode=statement
writes_session = host=$P port=$PORT dbname=testdb pool_mode=session
writes_tx = host=$P port=$PORT dbname=testdb pool_mode=transaction
writes_stmt = host=$P port=$PORT dbname=testdb pool_mode=statement
[pgbouncer]
pool_mode = transaction
default_pool_size = 8
max_client_conn = 60
query_wait_timeout = 30
log_connections = 0
log_disconnections = 0
health_check_user = postgres
health_check_period = 1
health_check_timeout = 1
health_check_fall = 3
health_check_rise = 2
EOF
pgu_start "$RUN/pgusher-body.ini"
cp "$PGU_INI" "$RUN/pgusher.ini"
PID=$PGU_PID
say "pgusher pid $PID on 127.0.0.1:$PGU_PORT ($PGUSHER_BIN)"
hosts_up() { [[ $(pgu_admin 'SHOW HOSTS' | awk -F'|' '$4 != "up"' | wc -l) == 0 && $(pgu_admin 'SHOW HOSTS' | wc -l) -ge 9 ]]; }
for ((i = 0; i < 100; i++)); do
	hosts_up && break
	sleep 0.2
done
hosts_up || fail "not all hosts up in SHOW HOSTS after 20 s: $(pgu_admin 'SHOW HOSTS' | tr '\n' ';')"
# Sockets of the pooler that are not TCP connections to servers (listeners, health checks
# excluded): the baseline for "sockets unaccounted" at the end. A client socket reset by its
# peer but never closed by the pooler no longer shows in ss, only in /proc/PID/fd.
sock_fds() { for f in /proc/$PID/fd/*; do readlink "$f"; done 2>/dev/null | grep -c '^socket:'; }
server_socks() { ss -Htanp "dport = :$PORT" 2>/dev/null | grep -c "pid=$PID,"; }
BASE_OTHER_SOCKS=$(($(sock_fds) - $(server_socks)))

# ---------------------------------------------------------------- load
cat >"$RUN/update.sql" <<'EOF'
\set aid random(1, 100000)
\set delta random(-5000, 5000)
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
EOF
START=$EPOCHSECONDS
END=$((START + DURATION))
echo "name,kind,entry,target,description" >"$RUN/workloads.csv"
echo "$EPOCHREALTIME begin - duration=$DURATION seed=$SEED build=$KIND" >"$RUN/events.log"
event() { echo "$EPOCHREALTIME $*" >>"$RUN/events.log"; }

# pgbench_loop NAME ENTRY CLIENTS RATE ARGS...: pgbench rounds of ROUND s until END.
pgbench_loop() {
	local name=$1 entry=$2 c=$3 rate=$4 log=$RUN/load/$1.log round=0 left t rc
	shift 4
	while [[ ! -f $RUN/stop ]]; do
		left=$((END - EPOCHSECONDS))
		((left >= 3)) || break
		t=$((left < ROUND ? left : ROUND))
		round=$((round + 1))
		echo "SOAK-ROUND $round start -T $t" | pgu_ts >>"$log"
		timeout -k 5 $((t + STUCK)) pgbench -n -T "$t" -c "$c" -j 1 -R "$rate" \
			-h 127.0.0.1 -p "$PGU_PORT" -U u_trust "$@" "$entry" 2>&1 | pgu_ts >>"$log"
		rc=${PIPESTATUS[0]}
		echo "SOAK-ROUND $round end rc=$rc" | pgu_ts >>"$log"
		((rc == 124 || rc == 137)) && echo "SOAK-STUCK round $round did not end within $STUCK s of its -T $t" | pgu_ts >>"$log"
		sleep 1
	done
}
# slow_queries STYLE: 10-20 queries 1-4 s apart (plain), or each in a transaction held 1-2 s
# (intx), until END.
slow_queries() {
	local n=$((10 + RANDOM % 11)) i
	for ((i = 0; i < n && EPOCHSECONDS < END - 8; i++)); do
		if [[ $1 == intx ]]; then
			echo "begin; select $i, pg_is_in_recovery();"
			sleep $((1 + RANDOM % 2))
			echo "select count(*) from pgbench_branches; commit;"
		else
			echo "select $i, now() is not null, pg_is_in_recovery();"
		fi
		sleep $((1 + RANDOM % 4))
	done
}
slow_loop() { # NAME ENTRY STYLE: psql sessions until END
	local name=$1 entry=$2 style=$3 log=$RUN/load/$1.log run=0 rc
	while [[ ! -f $RUN/stop ]] && ((EPOCHSECONDS < END - 10)); do
		run=$((run + 1))
		echo "SOAK-RUN $run start" | pgu_ts >>"$log"
		slow_queries "$style" | timeout -k 5 $((END - EPOCHSECONDS + STUCK)) psql -X -A -t -q -v ON_ERROR_STOP=1 \
			-h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d "$entry" 2>&1 | pgu_ts >>"$log"
		rc=${PIPESTATUS[1]}
		echo "SOAK-RUN $run end rc=$rc" | pgu_ts >>"$log"
		sleep 1
	done
}
spawn() { # NAME KIND ENTRY TARGET DESCRIPTION -- FUNCTION ARGS...
	echo "$1,$2,$3,$4,$5" >>"$RUN/workloads.csv"
	shift 6
	"$@" &
	WORKERS+=("$!")
}
spawn r_sess_S pgbench reads_session reads "pgbench -S -M prepared, 3 clients, 60 tps" -- pgbench_loop r_sess_S reads_session 3 60 -S -M prepared
spawn r_tx_S pgbench reads_tx reads "pgbench -S -M extended, 4 clients, 80 tps" -- pgbench_loop r_tx_S reads_tx 4 80 -S -M extended
spawn r_stmt_S pgbench reads_stmt reads "pgbench -S, 3 clients, 60 tps" -- pgbench_loop r_stmt_S reads_stmt 3 60 -S
spawn w_sess_N pgbench writes_session writes "pgbench -N -M prepared, 2 clients, 40 tps" -- pgbench_loop w_sess_N writes_session 2 40 -N -M prepared
spawn w_tx_N pgbench writes_tx writes "pgbench -N, 3 clients, 40 tps" -- pgbench_loop w_tx_N writes_tx 3 40 -N
spawn w_tx_S pgbench writes_tx writes "pgbench -S -M extended, 2 clients, 40 tps" -- pgbench_loop w_tx_S writes_tx 2 40 -S -M extended
spawn w_stmt_U pgbench writes_stmt writes "update script (no BEGIN), 2 clients, 40 tps" -- pgbench_loop w_stmt_U writes_stmt 2 40 -f "$RUN/update.sql"
spawn churn_r pgbench reads_tx reads "pgbench -S -C, 2 clients, 15 connections/s" -- pgbench_loop churn_r reads_tx 2 15 -S -C
spawn churn_w pgbench writes_session writes "pgbench -N -C, 2 clients, 15 connections/s" -- pgbench_loop churn_w writes_session 2 15 -N -C
spawn slow_r_sess slow reads_session reads "psql, 1-4 s between queries" -- slow_loop slow_r_sess reads_session plain
spawn slow_r_tx slow reads_tx reads "psql, 1-4 s between queries" -- slow_loop slow_r_tx reads_tx plain
spawn slow_w_tx slow writes_tx writes "psql, transactions held 1-2 s" -- slow_loop slow_w_tx writes_tx intx
spawn slow_w_sess slow writes_session writes "psql, transactions held 1-2 s" -- slow_loop slow_w_sess writes_session intx
noread() { # NAME DATABASES...
	local name=$1 args=() d
	shift
	for d in "$@"; do args+=(--database "$d"); done
	python3 "$SOAK_DIR/noread.py" --port "$PGU_PORT" --seconds $((END - EPOCHSECONDS - 5)) "${args[@]}" \
		>>"$RUN/load/$name.log" 2>&1
}
spawn noread_1 noread reads_tx+writes_tx+reads_session mixed "4 x 1 MB results unread, then reset/bad header/close" -- noread noread_1 reads_tx writes_tx reads_session
spawn noread_2 noread writes_session+reads_stmt+writes_stmt mixed "4 x 1 MB results unread, then reset/bad header/close" -- noread noread_2 writes_session reads_stmt writes_stmt

# ---------------------------------------------------------------- faults
fault_loop() {
	local n=0 kinds=() kind node host hold gap pids size=8
	while ((n < MAX_FAULTS)) && [[ ! -f $RUN/stop ]]; do
		gap=$((FAULT_MIN + RANDOM % (FAULT_MAX - FAULT_MIN + 1)))
		# leave room for the fault to end (HOLD_MAX) and be noticed before the load stops
		((EPOCHSECONDS + gap + HOLD_MAX + 10 < END)) || break
		sleep "$gap"
		if ((${#kinds[@]} == 0)); then # the next three faults: one of each, shuffled
			kinds=(kill freeze reload)
			local j k tmp
			for ((j = 2; j > 0; j--)); do
				k=$((RANDOM % (j + 1)))
				tmp=${kinds[j]} kinds[j]=${kinds[k]} kinds[k]=$tmp
			done
		fi
		kind=${kinds[0]}
		kinds=("${kinds[@]:1}")
		n=$((n + 1))
		if ((RANDOM % 2)); then node=n1 host=$S1; else node=n2 host=$S2; fi
		hold=$((HOLD_MIN + RANDOM % (HOLD_MAX - HOLD_MIN + 1)))
		case $kind in
		kill)
			event kill "$host" "pg_ctl -m immediate stop, restart after $hold s"
			pgu_node_ctl "$node" -m immediate -w -t 30 stop || event error "$host" "pg_ctl stop failed"
			event down "$host" stopped
			sleep "$hold"
			pgu_node_start "$node" || event error "$host" "pg_ctl start failed"
			event up "$host" "restarted (accepting connections)"
			;;
		freeze)
			pids=$(pgu_node_pids "$node")
			echo "$pids" >"$RUN/frozen"
			event freeze "$host" "SIGSTOP of $(wc -w <<<"$pids") processes for $hold s"
			kill -STOP $pids
			sleep "$hold"
			kill -CONT $pids
			rm -f "$RUN/frozen"
			event up "$host" SIGCONT
			;;
		reload)
			size=$((size == 8 ? 6 : 8))
			sed -i "s/^default_pool_size = .*/default_pool_size = $size/" "$PGU_INI"
			kill -HUP "$PID"
			event reload - "SIGHUP, default_pool_size = $size"
			;;
		esac
	done
}
fault_loop &
FAULTER=$!

# ---------------------------------------------------------------- sampling
sample() { # print: epoch,elapsed,rss_kb,fds,used_clients,login_clients,used_servers
	local rss fds lists
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status" 2>/dev/null)
	fds=$(ls "/proc/$PID/fd" 2>/dev/null | wc -l)
	lists=$(pgu_admin 'SHOW LISTS' 2>/dev/null | awk -F'|' '{v[$1]=$2} END {printf "%s,%s,%s", v["used_clients"], v["login_clients"], v["used_servers"]}')
	echo "$EPOCHSECONDS,$((EPOCHSECONDS - START)),$rss,$fds,$lists"
}
sampler() {
	echo "epoch,elapsed_s,rss_kb,fds,used_clients,login_clients,used_servers" >"$RUN/samples.csv"
	while ((EPOCHSECONDS < END)) && [[ ! -f $RUN/stop ]]; do
		if ! pgu__alive "$PID"; then
			event crash - "pgusher (pid $PID) is gone"
			touch "$RUN/stop"
			break
		fi
		sample >>"$RUN/samples.csv"
		sleep "$SAMPLE"
	done
}
sampler &
SAMPLER=$!

say "load running for $DURATION s (until $(date -d "@$END" +%T)); faults every $FAULT_MIN-$FAULT_MAX s"
while ((EPOCHSECONDS < END)) && [[ ! -f $RUN/stop ]]; do
	sleep 5
	((($EPOCHSECONDS - START) % 60 < 5)) && say "$((EPOCHSECONDS - START)) s: $(tail -n 1 "$RUN/samples.csv")"
done
event end - "load time over"

# ---------------------------------------------------------------- drain and final checks
# Workers end their last round by themselves (its -T stops at END); anything still running
# STUCK s later is killed and reported.
deadline=$((EPOCHSECONDS + STUCK + 15))
for p in "${WORKERS[@]}" $FAULTER $SAMPLER; do
	while pgu__alive "$p" && ((EPOCHSECONDS < deadline)); do sleep 0.5; done
	if pgu__alive "$p"; then
		event stuck - "worker pid $p still running $((STUCK + 15)) s after the end: killed"
		pgu_kill_tree "$p" KILL
	fi
	wait "$p" 2>/dev/null # (never a bare wait: the pooler is a child too)
done
WORKERS=() FAULTER="" SAMPLER=""
# shellcheck disable=SC2046 # a list of pids
[[ -s $RUN/frozen ]] && { kill -CONT $(cat "$RUN/frozen"); rm -f "$RUN/frozen"; }
for n in n1 n2; do [[ -n $(pgu_node_pids "$n") ]] || pgu_node_start "$n"; done

{
	if pgu__alive "$PID"; then
		sleep 5 # closing connections finish, server connections stay pooled
		echo "alive=1"
		echo "sample_after=$(sample)"
		echo "clients_after=$(pgu_admin 'SHOW CLIENTS' | awk -F'|' '$3 != "pgbouncer"' | grep -c .)"
		echo "servers_after=$(pgu_admin 'SHOW SERVERS' | grep -c .)"
		# TCP sockets the pooler still holds: from clients (its listen port) and to servers
		echo "client_sockets_after=$(ss -Htanp "sport = :$PGU_PORT" 2>/dev/null | grep -v LISTEN | grep -c "pid=$PID,")"
		echo "client_socket_states_after=$(ss -Htanp "sport = :$PGU_PORT" 2>/dev/null | grep -v LISTEN | grep "pid=$PID," | awk '{print $1}' | sort | uniq -c | awk '{printf "%s %s; ", $2, $1}')"
		echo "server_sockets_after=$(ss -Htanp "dport = :$PORT" 2>/dev/null | grep -c "pid=$PID,")"
		echo "sockets_unaccounted_after=$(($(sock_fds) - $(server_socks) - $(ss -Htanp "sport = :$PGU_PORT" 2>/dev/null | grep -v LISTEN | grep -c "pid=$PID,") - BASE_OTHER_SOCKS))"
		echo "fd_kinds_after=$(for f in /proc/$PID/fd/*; do readlink "$f"; done 2>/dev/null | sed 's/:.*//; s/^\/.*/file/' | sort | uniq -c | awk '{printf "%s %s; ", $2, $1}')"
		ok=1
		for d in reads_tx writes_tx reads_session writes_stmt; do
			r=$(timeout 15 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d "$d" -c 'select 42' 2>&1)
			[[ $r == 42 ]] || { ok=0; echo "query_after_error=$d: $r"; }
		done
		echo "query_after_ok=$ok"
		t0=$EPOCHREALTIME
		pgu_stop
		echo "stop_seconds=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')"
	else
		echo "alive=0"
		wait "$PID" 2>/dev/null
		echo "exit_status=$?"
		PGU_PID=""
	fi
} >"$RUN/final.txt" 2>&1
event stopped - "pgusher stopped"

python3 "$SOAK_DIR/report.py" "$RUN" --date "$(date +%F)" --build "$KIND" --fault-window "$FAULT_WINDOW" \
	--up-grace "$UP_GRACE" --warmup "$WARMUP" | tee "$RUN/summary.txt"
rc=${PIPESTATUS[0]}
say "results in $RUN"
exit "$rc"
