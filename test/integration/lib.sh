# shellcheck shell=bash
# Common code for pgusher's integration tests: source it first thing in t_*.sh.
#
# Environment (all optional):
#   PGUSHER_SRC     source tree (default: two levels above this file)
#   PGUSHER_BUILD   build tree (default: $PGUSHER_SRC/build)
#   PGUSHER_BIN     pooler under test (default: $PGUSHER_BUILD/pgusher); may be
#                   /usr/sbin/pgbouncer: pgusher is a drop-in replacement
#   PGUSHER_RUN_AS  OS user to run the pooler as (default: postgres when we are root
#                   and the binary is called pgbouncer, which refuses to run as root)
#   PGUSHER_PGPORT  port of the test cluster (default 15432)
#   PGU_KEEP=1      keep the per-test temp dir even when the test passes
#   PGU_OWN_CLUSTER=NAME:PORT  (set by the story) a cluster of its own: see below
#   PGU_WRAP=(CMD ARGS --)      (set by the story) pgu_start runs the pooler under CMD
#
# Provides:
#   $PGU_TMP                    per-test temp dir (ini, log, pidfile, unix socket, userlist)
#   $PGU_PGPORT $PGU_PRIMARY $PGU_STANDBY1 $PGU_STANDBY2   the cluster
#   pgu_user NAME SECRET        add an auth_file entry (before pgu_start)
#   pgu_user_set NAME SECRET    replace NAME's entry
#   pgu_md5_secret USER PASS / pgu_scram_secret USER PASS / pgu_pg_secret ROLE
#   pgu_start [FILE|-]          write ini (FILE or stdin), start the pooler, wait for it
#                               (PGU_START_ARGS=(...): extra command-line options)
#   pgu_stop                    stop it (SIGTERM, then SIGKILL); also run at exit
#   pgu_reload                  SIGHUP
#   pgu_reload_wait             SIGHUP, then wait (bounded) until the pooler logs the reload
#   pgu_reboot                  online restart (-R): a new pooler takes the old one's sockets
#   pgu_psql DB USER [ARGS]     psql via 127.0.0.1:$PGU_PORT (PGPASSWORD aware)
#   pgu_psql_unix DB USER [ARGS] psql via the pooler's unix socket
#   pgu_try CMD...              run CMD, never trip set -e: sets PGU_OUT (stdout+stderr), PGU_RC
#   pgu_bg CMD...               run CMD in background, killed at exit; pid in PGU_BG_PID
#   pgu_make_certs DIR          test certificates (openssl CLI) in DIR: see the function
#   pgu_cluster_tls DIR C0 C1 C2  ssl=on on the cluster's nodes (node ni presents DIR/Ci.crt),
#                               hostssl-only pg_hba for the test users: see the function
#   pgu_node_cert I DIR C       node nI presents DIR/C.crt from now on (reload)
#   pgu_direct HOST SQL / pgu_q DB [ARGS] / pgu_host_field DB HOST COL / pgu_host_is ...
#   pgu_wait_for SECS WHAT CMD... / pgu_commits HOST / pgu_flush_stats DB
#   pgu_soft_fail MSG / pgu_finish   multi-host stories on their own cluster: see that section
#   pgu_ts / pgu_run_ts OUT CMD...   output lines stamped with the time they were printed
#   check "what"                announce what the test checks next
#   assert_eq EXPECTED ACTUAL MSG / assert_contains HAYSTACK NEEDLE MSG /
#   assert_not_contains HAYSTACK NEEDLE MSG / assert_fails MSG (after pgu_try) /
#   assert_ok MSG (after pgu_try) / assert_log_contains NEEDLE [SECONDS]
#   fail MSG / pass
set -euo pipefail

PGU_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGU_TEST=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
PGUSHER_SRC=${PGUSHER_SRC:-$(cd "$PGU_LIBDIR/../.." && pwd)}
PGUSHER_BUILD=${PGUSHER_BUILD:-$PGUSHER_SRC/build}
PGUSHER_BIN=${PGUSHER_BIN:-$PGUSHER_BUILD/pgusher}

# PGU_OWN_CLUSTER=NAME:PORT, set before sourcing: the story stops, pauses or promotes nodes,
# so it runs on a cluster of its own, on port $PGUSHER_<NAME>_PGPORT (default PORT) in
# $PGUSHER_<NAME>_CLUSTER_DIR (default /tmp/pgusher-cluster-NAME-PORT), stopped at exit.
if [[ -n ${PGU_OWN_CLUSTER:-} ]]; then
	pgu__name=${PGU_OWN_CLUSTER%%:*}
	pgu__var=PGUSHER_${pgu__name^^}_PGPORT
	export PGUSHER_PGPORT=${!pgu__var:-${PGU_OWN_CLUSTER#*:}}
	pgu__var=PGUSHER_${pgu__name^^}_CLUSTER_DIR
	export PGUSHER_CLUSTER_DIR=${!pgu__var:-/tmp/pgusher-cluster-$pgu__name-$PGUSHER_PGPORT}
	unset pgu__name pgu__var
fi
PGU_PGPORT=${PGUSHER_PGPORT:-15432}
PGU_PRIMARY=127.0.0.1
PGU_STANDBY1=127.0.0.2
PGU_STANDBY2=127.0.0.3
export PGUSHER_PGPORT=$PGU_PGPORT

# No stray libpq settings from the caller's environment.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS PGSSLMODE \
	PGTARGETSESSIONATTRS PGAPPNAME || true
export PGCONNECT_TIMEOUT=10

PGU_PID=""
PGU_PORT=""
PGU_BG_PIDS=()
PGU_OUT=""
PGU_RC=0
PGU_FAILED=0

# ---------------------------------------------------------------- reporting

pgu__tail_logs() {
	if [[ -n ${PGU_LOG:-} && -f $PGU_LOG ]]; then
		echo "---- last lines of pooler log $PGU_LOG ----" >&2
		tail -n 40 "$PGU_LOG" >&2 || true
	fi
	if [[ -n ${PGU_STDERR:-} && -s $PGU_STDERR ]]; then
		echo "---- pooler stdout/stderr ----" >&2
		tail -n 40 "$PGU_STDERR" >&2 || true
	fi
}

fail() {
	PGU_FAILED=1
	echo "FAIL [$PGU_TEST]: $*" >&2
	pgu__tail_logs
	exit 1
}

pass() {
	echo "PASS [$PGU_TEST]"
	exit 0
}

check() { echo "== [$PGU_TEST] checking: $*"; }

skip_note() { echo "-- [$PGU_TEST] skipped: $*"; }

assert_eq() { # expected actual msg
	[[ $1 == "$2" ]] || fail "${3:-values differ}: expected '$1', got '$2'"
	echo "   ok: ${3:-equal} ('$1')"
}

assert_contains() { # haystack needle msg
	[[ $1 == *"$2"* ]] || fail "${3:-missing text}: expected output to contain '$2'; output was:
$1"
	echo "   ok: ${3:-contains} ('$2')"
}

assert_not_contains() { # haystack needle msg
	[[ $1 != *"$2"* ]] || fail "${3:-unexpected text}: output must not contain '$2'; output was:
$1"
	echo "   ok: ${3:-does not contain} ('$2')"
}

assert_ok() { # after pgu_try
	((PGU_RC == 0)) || fail "${1:-command failed} (exit $PGU_RC); output:
$PGU_OUT"
	echo "   ok: ${1:-succeeded}"
}

assert_fails() { # after pgu_try
	((PGU_RC != 0)) || fail "${1:-command should have failed} but it succeeded; output:
$PGU_OUT"
	echo "   ok: ${1:-failed as expected} (exit $PGU_RC)"
}

assert_log_contains() { # needle [seconds to wait]
	local needle=$1 wait=${2:-5} deadline
	deadline=$((SECONDS + wait))
	while :; do
		if [[ -f $PGU_LOG ]] && grep -qF -- "$needle" "$PGU_LOG"; then
			echo "   ok: pooler log contains '$needle'"
			return 0
		fi
		((SECONDS < deadline)) || break
		sleep 0.2
	done
	fail "pooler log $PGU_LOG does not contain '$needle'"
}

# pgu_try CMD...: run without tripping set -e; PGU_OUT gets stdout+stderr, PGU_RC the status.
pgu_try() {
	set +e
	PGU_OUT=$("$@" 2>&1)
	PGU_RC=$?
	set -e
	return 0
}

# ---------------------------------------------------------------- temp dir, users

PGU_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgu-$PGU_TEST.XXXXXX")
chmod 0755 "$PGU_TMP"
PGU_INI=$PGU_TMP/pgusher.ini
PGU_LOG=$PGU_TMP/pgusher.log
PGU_PIDFILE=$PGU_TMP/pgusher.pid
PGU_STDERR=$PGU_TMP/stderr.log
PGU_USERLIST=$PGU_TMP/userlist.txt
# No ~/.pgpass either (an empty file: libpq warns about /dev/null).
export PGPASSFILE=$PGU_TMP/pgpass
: >"$PGPASSFILE"
chmod 0600 "$PGPASSFILE"

if [[ -n ${PGUSHER_RUN_AS:-} ]]; then
	PGU_RUN_AS=$PGUSHER_RUN_AS
elif [[ $(id -u) -eq 0 && $(basename "$PGUSHER_BIN") == pgbouncer* ]]; then
	PGU_RUN_AS=postgres
else
	PGU_RUN_AS=""
fi
if [[ -n $PGU_RUN_AS ]]; then
	chown "$PGU_RUN_AS" "$PGU_TMP"
fi

pgu_user() { # name secret: one auth_file line
	printf '"%s" "%s"\n' "$1" "$2" >>"$PGU_USERLIST"
}

pgu_user_set() { # name secret: replace NAME's auth_file line (or add it)
	grep -v "^\"$1\" " "$PGU_USERLIST" >"$PGU_USERLIST.new" || true
	mv "$PGU_USERLIST.new" "$PGU_USERLIST"
	pgu_user "$1" "$2"
}

pgu_md5_secret() { # user pass -> md5<hex(md5(pass||user))>
	printf 'md5%s\n' "$(printf '%s%s' "$2" "$1" | md5sum | cut -d' ' -f1)"
}

pgu_scram_secret() { # user pass -> SCRAM-SHA-256$4096:salt$StoredKey:ServerKey
	python3 - "$2" <<'EOF'
import base64, hashlib, hmac, os, sys
pw = sys.argv[1].encode()
salt = os.urandom(16)
salted = hashlib.pbkdf2_hmac("sha256", pw, salt, 4096)
ck = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
sk = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
b = lambda x: base64.b64encode(x).decode()
print("SCRAM-SHA-256$4096:%s$%s:%s" % (b(salt), b(hashlib.sha256(ck).digest()), b(sk)))
EOF
}

pgu_pg_secret() { # role -> its rolpassword as stored by the test cluster
	psql -X -A -t -h "$PGU_PRIMARY" -p "$PGU_PGPORT" -U postgres -d postgres \
		-c "select rolpassword from pg_authid where rolname = '$1'"
}

: >"$PGU_USERLIST"
pgu_user postgres ""
pgu_user u_trust ""
pgu_user u_md5 md5pass
pgu_user u_scram scrampass
pgu_user u_plain plainpass

# ---------------------------------------------------------------- cluster

if ! "$PGU_LIBDIR/cluster.sh" status >/dev/null 2>&1; then
	echo "-- [$PGU_TEST] test cluster not healthy: starting it"
	"$PGU_LIBDIR/cluster.sh" start || fail "could not start the test cluster"
fi

# ---------------------------------------------------------------- pooler

pgu_free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 10000))
		if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	fail "no free port found"
}

pgu__alive() { # pid: running and not a zombie
	local st
	[[ -r /proc/$1/stat ]] || return 1
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ $st != Z && $st != X ]]
}

# pgu_start [FILE|-]: the ini body (sections as a test wants them). Adds to [pgbouncer]
# whatever of these the body does not set: listen_addr=127.0.0.1, listen_port (free),
# unix_socket_dir, logfile, pidfile, auth_file (PGU_USERLIST), auth_type=trust,
# admin_users=postgres.
pgu_start() {
	local body
	if [[ $# -gt 0 && $1 != - ]]; then
		body=$(cat "$1")
	else
		body=$(cat)
	fi
	[[ -x $PGUSHER_BIN ]] || fail "pooler binary '$PGUSHER_BIN' not found or not executable (build first)"
	pgu_stop

	local -A set=()
	local line sect="" key val
	while IFS= read -r line; do
		if [[ $line =~ ^[[:space:]]*\[([^]]+)\] ]]; then
			sect=${BASH_REMATCH[1],,}
		elif [[ $sect == pgbouncer && $line =~ ^[[:space:]]*([A-Za-z_]+)[[:space:]]*=[[:space:]]*(.*)$ ]]; then
			key=${BASH_REMATCH[1],,}
			val=${BASH_REMATCH[2]}
			set[$key]=$val
		fi
	done <<<"$body"
	PGU_PORT=${set[listen_port]:-$(pgu_free_port)}

	local auto=""
	[[ -n ${set[listen_addr]:-} ]] || auto+="listen_addr = 127.0.0.1"$'\n'
	[[ -n ${set[listen_port]:-} ]] || auto+="listen_port = $PGU_PORT"$'\n'
	[[ -n ${set[unix_socket_dir]+x} ]] || auto+="unix_socket_dir = $PGU_TMP"$'\n'
	[[ -n ${set[logfile]:-} ]] || auto+="logfile = $PGU_LOG"$'\n'
	[[ -n ${set[pidfile]:-} ]] || auto+="pidfile = $PGU_PIDFILE"$'\n'
	[[ -n ${set[auth_file]:-} ]] || auto+="auth_file = $PGU_USERLIST"$'\n'
	[[ -n ${set[auth_type]:-} ]] || auto+="auth_type = trust"$'\n'
	[[ -n ${set[admin_users]:-} ]] || auto+="admin_users = postgres"$'\n'

	{
		echo "; generated by test/integration/lib.sh for $PGU_TEST"
		local injected=0
		while IFS= read -r line; do
			echo "$line"
			if [[ $line =~ ^[[:space:]]*\[[pP][gG][bB][oO][uU][nN][cC][eE][rR]\] ]]; then
				printf '%s' "$auto"
				injected=1
			fi
		done <<<"$body"
		if ((!injected)); then
			echo
			echo "[pgbouncer]"
			printf '%s' "$auto"
		fi
	} >"$PGU_INI"
	chmod 0644 "$PGU_INI" "$PGU_USERLIST"
	rm -f "$PGU_PIDFILE"

	local -a launch=()
	if [[ -n $PGU_RUN_AS ]]; then
		launch=(setpriv --reuid="$PGU_RUN_AS" --regid="$PGU_RUN_AS" --init-groups --)
	fi
	# PGU_WRAP=(cmd args --): run the pooler under it (e.g. prlimit --nofile=SOFT:HARD --)
	if [[ -n ${PGU_WRAP+x} ]]; then
		launch=("${PGU_WRAP[@]}" "${launch[@]}")
	fi
	echo "-- [$PGU_TEST] starting $(basename "$PGUSHER_BIN") on 127.0.0.1:$PGU_PORT (dir $PGU_TMP)"
	"${launch[@]}" "$PGUSHER_BIN" ${PGU_START_ARGS[@]+"${PGU_START_ARGS[@]}"} "$PGU_INI" >>"$PGU_STDERR" 2>&1 &
	PGU_PID=$!

	local i
	for ((i = 0; i < 100; i++)); do
		if ! pgu__alive "$PGU_PID"; then
			local rc=0
			wait "$PGU_PID" || rc=$?
			PGU_PID=""
			fail "pooler exited during startup (exit $rc)"
		fi
		# pg_isready: 0 = accepting, 1 = answered but rejected: both mean it is listening.
		# Plaintext: a TLS listener answers it with an error (SSL required), not a TLS failure.
		local r=0
		PGSSLMODE=disable pg_isready -q -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -t 1 >/dev/null 2>&1 || r=$?
		if ((r == 0 || r == 1)); then
			return 0
		fi
		sleep 0.1
	done
	fail "pooler not accepting connections on 127.0.0.1:$PGU_PORT after 10 s"
}

# pgu_reboot: online restart (-R): a new pooler with the same ini takes over the sockets of
# the running one (which exits); PGU_PID becomes the new one's. Waits (10 s) for the old one
# to be gone and the new one to accept. PGU_OLD_PID: the old one's pid.
pgu_reboot() {
	[[ -n $PGU_PID ]] || fail "pgu_reboot: pooler not running"
	local -a launch=()
	if [[ -n $PGU_RUN_AS ]]; then
		launch=(setpriv --reuid="$PGU_RUN_AS" --regid="$PGU_RUN_AS" --init-groups --)
	fi
	PGU_OLD_PID=$PGU_PID
	echo "-- [$PGU_TEST] online restart: $(basename "$PGUSHER_BIN") -R"
	"${launch[@]}" "$PGUSHER_BIN" -R "$PGU_INI" >>"$PGU_STDERR" 2>&1 &
	PGU_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		pgu__alive "$PGU_PID" || { PGU_PID=""; fail "the new pooler exited during the online restart"; }
		if ! pgu__alive "$PGU_OLD_PID"; then
			wait "$PGU_OLD_PID" 2>/dev/null || true
			local r=0
			PGSSLMODE=disable pg_isready -q -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -t 1 >/dev/null 2>&1 || r=$?
			((r == 0 || r == 1)) && return 0
		fi
		sleep 0.1
	done
	fail "online restart not done after 10 s (old pooler $(pgu__alive "$PGU_OLD_PID" && echo still running || echo gone))"
}

pgu_reload() {
	[[ -n $PGU_PID ]] || fail "pgu_reload: pooler not running"
	kill -HUP "$PGU_PID"
}
pgu__nreloads() { grep -c "$1" "$PGU_LOG" 2>/dev/null || true; }
pgu_reload_wait() {
	local re='configuration reloaded' n0 i # pgusher logs it once the new config is in force
	[[ $(basename "$PGUSHER_BIN") == pgbouncer ]] && re='got SIGHUP, re-reading config'
	n0=$(pgu__nreloads "$re")
	pgu_reload
	for ((i = 0; i < 50; i++)); do
		(($(pgu__nreloads "$re") > n0)) && { echo "   ok: reloaded"; return 0; }
		sleep 0.2
	done
	fail "no '$re' in the log within 10 s of SIGHUP"
}

# Stop the pooler: SIGTERM, up to 10 s, then SIGKILL. Fails the test if the pooler
# reported a sanitizer error.
pgu_stop() {
	[[ -n $PGU_PID ]] || return 0
	local pid=$PGU_PID i rc=0 killed=0
	PGU_PID=""
	if pgu__alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			pgu__alive "$pid" || break
			sleep 0.1
		done
		if pgu__alive "$pid"; then
			echo "-- [$PGU_TEST] pooler did not exit within 10 s of SIGTERM: SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
			killed=1
		fi
	fi
	wait "$pid" 2>/dev/null || rc=$?
	if [[ -s $PGU_STDERR ]] && grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer' "$PGU_STDERR"; then
		PGU_FAILED=1
		echo "FAIL [$PGU_TEST]: sanitizer reported an error (pooler exit $rc):" >&2
		grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$PGU_STDERR" | head -n 80 >&2
		return 1
	fi
	if ((killed == 0 && rc != 0 && rc != 143)); then
		echo "-- [$PGU_TEST] note: pooler exited with status $rc after SIGTERM" >&2
	fi
	return 0
}

pgu_bg() { # CMD...: background job, killed at exit
	"$@" &
	PGU_BG_PID=$!
	PGU_BG_PIDS+=("$PGU_BG_PID")
}

# Sessions held open: each a psql reading from a fifo, idle after its first query until
# pgu_release_holds closes the fifos.
PGU_HOLD_FDS=()
pgu_hold() { # db user
	local fifo=$PGU_TMP/fifo.$RANDOM fd
	mkfifo "$fifo"
	pgu_bg bash -c "psql -X -h 127.0.0.1 -p $PGU_PORT -U $2 $1 <$fifo >/dev/null 2>&1"
	exec {fd}>"$fifo"
	echo "select 1;" >&"$fd"
	PGU_HOLD_FDS+=("$fd")
}
pgu_release_holds() {
	local fd
	for fd in "${PGU_HOLD_FDS[@]}"; do exec {fd}>&-; done
	PGU_HOLD_FDS=()
}
pgu_wait_clients() { # db n: until SHOW CLIENTS lists at least n clients of db (5 s)
	local i
	for ((i = 0; i < 50; i++)); do
		[[ $(psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'SHOW CLIENTS' |
			awk -F'|' -v d="$1" '$3==d' | wc -l) -ge $2 ]] && return 0
		sleep 0.1
	done
	fail "expected $2 clients on $1"
}

# A psql session held open through fifos: pgu_sess_open NAME [DB [USER]] (default testdb,
# as u_trust; DB may be a conninfo string such as "dbname=x sslmode=require");
# pgu_sess_q NAME SQL prints the first output line (stderr included) within
# 10 s; pgu_sess_close NAME closes psql's input (psql sends Terminate and exits; killed
# after 5 s).
declare -A PGU_SESS_W PGU_SESS_R PGU_SESS_PID
pgu_sess_open() {
	local name=$1 db=${2:-testdb} user=${3:-u_trust} w r
	mkfifo "$PGU_TMP/$name.in" "$PGU_TMP/$name.out"
	psql -X -A -t -q -h 127.0.0.1 -p "$PGU_PORT" -U "$user" -d "$db" <"$PGU_TMP/$name.in" >"$PGU_TMP/$name.out" 2>&1 &
	PGU_SESS_PID[$name]=$!
	PGU_BG_PIDS+=("$!")
	exec {w}>"$PGU_TMP/$name.in"
	exec {r}<"$PGU_TMP/$name.out"
	PGU_SESS_W[$name]=$w
	PGU_SESS_R[$name]=$r
}
pgu_sess_q() {
	local line=""
	echo "$2" >&"${PGU_SESS_W[$1]}"
	read -r -t 10 -u "${PGU_SESS_R[$1]}" line || line="(no answer within 10 s)"
	echo "$line"
}
pgu_sess_close() {
	local w=${PGU_SESS_W[$1]} r=${PGU_SESS_R[$1]} i
	exec {w}>&-
	for ((i = 0; i < 50; i++)); do
		kill -0 "${PGU_SESS_PID[$1]}" 2>/dev/null || break
		sleep 0.1
	done
	kill -TERM "${PGU_SESS_PID[$1]}" 2>/dev/null || true
	wait "${PGU_SESS_PID[$1]}" 2>/dev/null || true
	exec {r}<&-
}

# Wait (5 s at most) until the primary runs the query text $1 (an active backend), e.g. the
# session that holds a pool's only server.
pgu_wait_active_query() {
	local i n
	for ((i = 0; i < 50; i++)); do
		n=$(pg_direct "$PGU_PRIMARY" postgres -c "select count(*) from pg_stat_activity where query = '$1' and state = 'active'")
		((n >= 1)) && return 0
		sleep 0.1
	done
	fail "no active '$1' on the primary within 5 s"
}

# ---------------------------------------------------------------- test DNS server
# A DNS server the test controls (dnsmasq, authoritative for pgu.test) on port 53 of
# PGU_DNS_ADDR, a loopback address nothing else uses; never the machine's resolver.
#   pgu_dns_start [SERIAL]     start it (SOA serial SERIAL, default 1); $PGU_DNS_RESOLV is a
#                              resolv.conf naming it (for resolv_conf=)
#   pgu_dns_set NAME [ADDR...] NAME's records are ADDR... (none: NXDOMAIN); re-read at once
#   pgu_dns_pause / pgu_dns_resume   SIGSTOP/SIGCONT: a server that does not answer
#   pgu_dns_stop               stop it (also at exit)
#   pgu_dns_queries NAME       how many queries for NAME it has answered so far (any type)
PGU_DNS_ADDR=${PGU_DNS_ADDR:-127.0.0.153}
PGU_DNS_PID=""
pgu_dns_start() {
	local serial=${1:-1} i
	command -v dnsmasq >/dev/null || fail "dnsmasq is not installed (test/run-all.sh installs it)"
	PGU_DNS_HOSTS=$PGU_TMP/dns.hosts
	PGU_DNS_LOG=$PGU_TMP/dns.log
	PGU_DNS_RESOLV=$PGU_TMP/resolv.conf
	[[ -f $PGU_DNS_HOSTS ]] || : >"$PGU_DNS_HOSTS"
	echo "nameserver $PGU_DNS_ADDR" >"$PGU_DNS_RESOLV"
	chmod 0644 "$PGU_DNS_HOSTS" "$PGU_DNS_RESOLV"
	dnsmasq --keep-in-foreground --user=root --no-resolv --no-hosts --no-poll \
		--addn-hosts="$PGU_DNS_HOSTS" --listen-address="$PGU_DNS_ADDR" --bind-interfaces \
		--port=53 --local=/pgu.test/ --auth-zone=pgu.test --auth-soa="$serial" \
		--auth-server=ns.pgu.test,"$PGU_DNS_ADDR" --local-ttl=1 --neg-ttl=1 --cache-size=0 \
		--log-queries --log-facility="$PGU_DNS_LOG" --pid-file= 2>>"$PGU_TMP/dns.stderr" &
	PGU_DNS_PID=$!
	PGU_BG_PIDS+=("$PGU_DNS_PID")
	for ((i = 0; i < 50; i++)); do
		# ours, not a leftover of an earlier run on the same address
		ss -Hlunp "sport = :53" 2>/dev/null | grep "$PGU_DNS_ADDR" | grep -q "pid=$PGU_DNS_PID," && return 0
		pgu__alive "$PGU_DNS_PID" || break
		sleep 0.1
	done
	cat "$PGU_TMP/dns.stderr" >&2 2>/dev/null
	fail "dnsmasq did not start on $PGU_DNS_ADDR:53"
}
pgu_dns_set() { # name addr...
	local name=$1 a
	shift
	awk -v n="$name" '$2 != n' "$PGU_DNS_HOSTS" >"$PGU_DNS_HOSTS.new"
	for a in "$@"; do echo "$a $name" >>"$PGU_DNS_HOSTS.new"; done
	mv "$PGU_DNS_HOSTS.new" "$PGU_DNS_HOSTS"
	chmod 0644 "$PGU_DNS_HOSTS"
	[[ -n $PGU_DNS_PID ]] && kill -HUP "$PGU_DNS_PID"
	sleep 0.2 # dnsmasq re-reads on SIGHUP asynchronously
}
pgu_dns_pause() { kill -STOP "$PGU_DNS_PID"; }
pgu_dns_resume() { kill -CONT "$PGU_DNS_PID"; }
pgu_dns_stop() {
	[[ -n $PGU_DNS_PID ]] || return 0
	kill -CONT "$PGU_DNS_PID" 2>/dev/null || true
	kill -TERM "$PGU_DNS_PID" 2>/dev/null || true
	wait "$PGU_DNS_PID" 2>/dev/null || true
	PGU_DNS_PID=""
}
pgu_dns_queries() { # name
	grep -c -E "query\[[A-Z]+\] $1 from" "$PGU_DNS_LOG" 2>/dev/null || true
}

pgu__exit() {
	local rc=$?
	set +e
	local p
	[[ -n ${PGU_DNS_PID:-} ]] && kill -CONT "$PGU_DNS_PID" 2>/dev/null && kill -TERM "$PGU_DNS_PID" 2>/dev/null
	for p in "${PGU_BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PGU_BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	if declare -F pgu_at_exit >/dev/null; then
		pgu_at_exit # the story's own clean-up (e.g. resume a paused replay)
	fi
	pgu_stop || rc=1
	if [[ -n ${PGU_OWN_CLUSTER:-} ]]; then
		"$PGU_LIBDIR/cluster.sh" stop >/dev/null 2>&1
	fi
	((PGU_FAILED)) && rc=1
	if ((rc == 0)) && [[ ${PGU_KEEP:-0} != 1 ]]; then
		rm -rf "$PGU_TMP"
	else
		echo "-- [$PGU_TEST] exit $rc; files kept in $PGU_TMP" >&2
	fi
	exit "$rc"
}
trap pgu__exit EXIT

# ---------------------------------------------------------------- clients

pgu_psql() { # db user [psql args]
	local db=$1 user=$2
	shift 2
	psql -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U "$user" -d "$db" "$@"
}

pgu_psql_unix() { # db user [psql args]
	local db=$1 user=$2
	shift 2
	psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$PGU_TMP" -p "$PGU_PORT" -U "$user" -d "$db" "$@"
}

# Direct connection to a cluster node, bypassing the pooler.
pg_direct() { # host db [psql args]
	local host=$1 db=$2
	shift 2
	psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$host" -p "$PGU_PGPORT" -U postgres -d "$db" "$@"
}

# ---------------------------------------------------------------- cluster nodes, processes
# For scripts that break the cluster on purpose (test/soak/soak.sh): node n0 is the
# primary, n1/n2 the standbys ($PGU_STANDBY1/2). pg_ctl runs as postgres when we are root.

pgu_node_datadir() { echo "${PGUSHER_CLUSTER_DIR:-/tmp/pgusher-cluster}/$1/data"; }

pgu_node_ctl() { # node pg_ctl-args...
	local n=$1 bin
	shift
	bin=$("$PGU_LIBDIR/cluster.sh" env | sed -n "s/^export PGUSHER_PGBIN='\(.*\)'$/\1/p")
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$bin/pg_ctl" -D "$(pgu_node_datadir "$n")" "$@" >/dev/null
	else
		"$bin/pg_ctl" -D "$(pgu_node_datadir "$n")" "$@" >/dev/null
	fi
}

pgu_node_start() { # node: start it again after pgu_node_ctl NODE -m immediate stop (60 s)
	# 9>&-: the postmaster must not inherit cluster.sh's start/stop lock.
	pgu_node_ctl "$1" -l "${PGUSHER_CLUSTER_DIR:-/tmp/pgusher-cluster}/$1.log" -w -t 60 start 9>&-
}

pgu_node_pids() { # node: its postmaster and all the postmaster's children (empty if down)
	local pm
	pm=$(head -n 1 "$(pgu_node_datadir "$1")/postmaster.pid" 2>/dev/null) || return 0
	[[ $pm =~ ^[0-9]+$ ]] && kill -0 "$pm" 2>/dev/null || return 0
	echo "$pm" $(pgrep -P "$pm")
}

# pgu_ts: copy stdin to stdout, each line prefixed with the epoch time it was read
# ("1764590000.123456 line"), e.g. pgbench ... 2>&1 | pgu_ts >>log
pgu_ts() {
	local line
	while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}

# pgu_run_ts OUTFILE CMD...: run CMD, its output (stdout+stderr) to OUTFILE, each line
# prefixed with the time it was printed (pgu_ts); CMD's exit status to OUTFILE.rc
pgu_run_ts() {
	local out=$1
	shift
	{
		local rc=0
		"$@" 2>&1 || rc=$?
		echo "$rc" >"$out.rc"
	} | pgu_ts >"$out"
}

# pgu_kill_tree PID [SIGNAL]: signal PID and all its descendants (parents first, so that
# no new child is forked behind our back); default SIGTERM.
pgu_kill_tree() {
	local pid=$1 sig=${2:-TERM} all=() todo=("$1") p
	while ((${#todo[@]})); do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		all+=("$p")
		todo+=($(pgrep -P "$p" 2>/dev/null || true))
	done
	kill "-$sig" "${all[@]}" 2>/dev/null || true
}

pgu_admin() { # SQL: run on the pooler's console as postgres, '|'-separated rows (10 s)
	timeout 10 psql -X -A -t -q -F'|' -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c "$1"
}

# ---------------------------------------------------------------- multi-host stories
# For stories on a cluster of their own (stopping, pausing, promoting nodes). The cluster's
# database is testdb; PORT is $PGU_PGPORT; the pooler's clients log in as u_trust.

pgu_direct() { # host sql: psql straight to a node as postgres, database testdb
	psql -X -At -q -h "$1" -p "$PGU_PGPORT" -U postgres testdb -c "$2"
}

pgu_q() { # db [psql args]: psql through the pooler as u_trust (20 s)
	local db=$1
	shift
	timeout 20 psql -X -At -q -h 127.0.0.1 -p "$PGU_PORT" -U u_trust "$db" "$@"
}

pgu_host_field() { # db host column: one column of SHOW HOSTS (4 state, 5 role, 6 lag,
	# 7 lag_bytes, 8 eligible, 9 sv_active, 10 sv_idle, 11 sv_login, 14 last_error)
	pgu_admin 'SHOW HOSTS' | awk -F'|' -v d="$1" -v h="$2" -v c="$3" '$1==d && $2==h {print $c}'
}

pgu_host_is() { [[ $(pgu_host_field "$1" "$2" "$3") == "$4" ]]; } # db host column value
pgu_host_has() { [[ $(pgu_host_field "$1" "$2" "$3") == *"$4"* ]]; } # db host column text

# pgu_wait_for SECONDS WHAT CMD...: poll CMD every 0.2 s until it succeeds (fail after
# SECONDS, with SHOW HOSTS in the message); sets PGU_WAITED (seconds, one decimal).
pgu_wait_for() {
	local secs=$1 what=$2 t0=$EPOCHREALTIME deadline=$((SECONDS + $1))
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) ||
			fail "timed out after ${secs}s waiting for: $what (SHOW HOSTS: $(pgu_admin 'SHOW HOSTS' 2>&1 | tr '\n' ';'))"
		sleep 0.2
	done
	PGU_WAITED=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
	echo "   ok: $what (after $PGU_WAITED s)"
}

pgu_commits() { # host: xact_commit of testdb on that node
	pgu_direct "$1" "select xact_commit from pg_stat_database where datname='testdb'"
}

# pgu_flush_stats DB: a backend flushes its statistics at most once a second while busy and
# at exit: close DB's server connections, then wait until the standbys' counters stop moving
# (but for the two transactions each reading of them adds: its login and its query).
pgu_flush_stats() {
	pgu_admin "RECONNECT $1" >/dev/null
	pgu_admin "WAIT_CLOSE $1" >/dev/null || fail "WAIT_CLOSE $1 did not finish"
	local i a b pa=-2 pb=-2
	for ((i = 0; i < 20; i++)); do
		sleep 0.5
		a=$(pgu_commits "$PGU_STANDBY1") b=$(pgu_commits "$PGU_STANDBY2")
		((pa >= 0 && a - pa <= 2 && b - pb <= 2)) && return 0
		pa=$a pb=$b
	done
}

# pgu_soft_fail MSG: report a failed assertion but go on with the other scenarios; pgu_finish
# then fails the test (one bug should not hide the state of the rest) or passes it.
PGU_SOFT_FAILS=()
pgu_soft_fail() {
	PGU_FAILED=1
	PGU_SOFT_FAILS+=("$*")
	echo "FAIL [$PGU_TEST]: $* (continuing with the other scenarios)" >&2
}
pgu_finish() {
	if ((${#PGU_SOFT_FAILS[@]})); then
		local m
		for m in "${PGU_SOFT_FAILS[@]}"; do echo "FAIL [$PGU_TEST]: $m" >&2; done
		fail "${#PGU_SOFT_FAILS[@]} assertion(s) failed (see above)"
	fi
	pass
}

# ---------------------------------------------------------------- TLS certificates

# pgu_make_certs DIR: make a throw-away PKI in DIR with the openssl CLI (RSA 2048, SHA-256):
#   ca.crt ca.key            the test CA ("pgusher test CA")
#   server.crt server.key    CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:127.0.0.2,
#                            IP:127.0.0.3, signed by ca
#   client.crt client.key    CN=u_trust (a client certificate), signed by ca
#   expired.crt expired.key  like server, but valid only in January 2020
#   ca2.crt ca2.key          a second, unrelated CA
#   other.crt other.key      like server (same names), but signed by ca2
#   other_client.crt other_client.key   CN=u_trust, signed by ca2
#   noname.crt noname.key    CN=noname, SAN DNS:elsewhere.example only (names neither
#                            localhost nor any 127.0.0.x), signed by ca
# Keys are mode 0640 and, when the pooler runs as another user ($PGU_RUN_AS), of that user's
# group, so the pooler (and PostgreSQL: root-owned 0640) may read them and libpq accepts them
# as client keys. Does nothing when DIR holds them already.
pgu_make_certs() {
	local d=$1 n
	[[ -f $d/ca.crt && -f $d/noname.crt ]] && return 0
	mkdir -p "$d"
	pgu__cert_req() { # name subject [san]
		openssl req -new -nodes -newkey rsa:2048 -keyout "$d/$1.key" -out "$d/$1.csr" \
			-subj "$2" ${3:+-addext "subjectAltName=$3"} >/dev/null 2>&1 ||
			fail "openssl req for $1 failed"
	}
	pgu__cert_ca() { # name
		openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$d/$1.key" -out "$d/$1.crt" \
			-days 3650 -subj "/CN=pgusher test $1" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 ||
			fail "openssl: CA $1 failed"
	}
	pgu__cert_sign() { # name ca extensions
		printf '%s\n' "$3" >"$d/$1.ext"
		openssl x509 -req -in "$d/$1.csr" -CA "$d/$2.crt" -CAkey "$d/$2.key" \
			-CAcreateserial -days 3650 -sha256 -extfile "$d/$1.ext" -out "$d/$1.crt" \
			>/dev/null 2>&1 || fail "openssl: signing $1 with $2 failed"
	}
	local san="DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3"
	local server_ext="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san"
	local client_ext="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
	pgu__cert_ca ca
	pgu__cert_ca ca2
	pgu__cert_req server "/CN=localhost"
	pgu__cert_sign server ca "$server_ext"
	pgu__cert_req client "/CN=u_trust"
	pgu__cert_sign client ca "$client_ext"
	pgu__cert_req other "/CN=localhost"
	pgu__cert_sign other ca2 "$server_ext"
	pgu__cert_req other_client "/CN=u_trust"
	pgu__cert_sign other_client ca2 "$client_ext"
	pgu__cert_req noname "/CN=noname"
	pgu__cert_sign noname ca "${server_ext/subjectAltName=$san/subjectAltName=DNS:elsewhere.example}"
	# An expired one needs explicit dates: "openssl ca" with a minimal database.
	pgu__cert_req expired "/CN=localhost" "$san"
	mkdir -p "$d/ca.db"
	: >"$d/ca.db/index.txt"
	echo 1000 >"$d/ca.db/serial"
	cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = tca
[tca]
database = $d/ca.db/index.txt
serial = $d/ca.db/serial
new_certs_dir = $d/ca.db
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
EOF
	openssl ca -batch -config "$d/ca.cnf" -cert "$d/ca.crt" -keyfile "$d/ca.key" \
		-in "$d/expired.csr" -out "$d/expired.crt" -notext \
		-startdate 20200101000000Z -enddate 20200131000000Z >/dev/null 2>&1 ||
		fail "openssl ca: expired certificate failed"
	rm -f "$d"/*.csr "$d"/*.ext
	for n in "$d"/*.key; do
		chmod 0640 "$n"
		[[ -z $PGU_RUN_AS ]] || chgrp "$(id -gn "$PGU_RUN_AS")" "$n"
	done
	chmod 0644 "$d"/*.crt
	chmod 0755 "$d"
}

# pgu_cluster_tls CERTDIR CERT0 CERT1 CERT2: turn ssl on in the running cluster, node nI
# presenting CERTDIR/CERTI.crt (and .key), with a pg_hba that accepts the test users over
# hostssl only (u_md5 md5, u_scram scram-sha-256, everybody else trust; replication and Unix
# sockets stay plaintext). For stories that run their own cluster: it is not undone.
# pgu_node_cert I CERTDIR CERT: node nI presents CERTDIR/CERT.crt from now on (a reload,
# no restart; new handshakes only).
pgu_node_cert() { # node-index certdir cert
	local host=${PGU_PRIMARY%.*}.$(($1 + 1))
	psql -X -q -o /dev/null -h "$host" -p "$PGU_PGPORT" -U postgres postgres -v ON_ERROR_STOP=1 <<EOF ||
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = '$2/$3.crt';
ALTER SYSTEM SET ssl_key_file = '$2/$3.key';
SELECT pg_reload_conf();
EOF
		fail "could not give node n$1 ($host) the certificate $3"
}
pgu_cluster_tls() { # certdir cert0 cert1 cert2
	local d=$1 i dd h out
	shift
	local certs=("$@")
	# PostgreSQL reads a root-owned key of mode 0640 (pgu_make_certs's) when its group may.
	[[ $(id -u) -ne 0 ]] || chgrp postgres "$d"/*.key
	for i in 0 1 2; do
		dd=$(pgu_node_datadir "n$i")
		cat >"$dd/pg_hba.conf" <<'EOF'
local   all             all                             trust
hostssl all             u_md5           127.0.0.0/8     md5
hostssl all             u_scram         127.0.0.0/8     scram-sha-256
hostssl all             all             127.0.0.0/8     trust
host    replication     all             127.0.0.0/8     trust
EOF
		[[ $(id -u) -ne 0 ]] || chown postgres:postgres "$dd/pg_hba.conf"
		pgu_node_cert "$i" "$d" "${certs[$i]}"
	done
	sleep 1
	for h in $PGU_PRIMARY $PGU_STANDBY1 $PGU_STANDBY2; do
		out=$(PGSSLMODE=disable psql -X -At -h "$h" -p "$PGU_PGPORT" -U u_trust testdb -c 'select 1' 2>&1 || true)
		[[ $out == *"no encryption"* ]] || fail "plaintext login to $h is not refused by pg_hba: $out"
		out=$(PGSSLMODE=require psql -X -At -h "$h" -p "$PGU_PGPORT" -U postgres testdb -c 'show ssl' 2>&1 || true)
		[[ $out == on ]] || fail "ssl is not on at $h: $out"
	done
	echo "   ok: ssl=on and hostssl-only pg_hba on $PGU_PRIMARY, $PGU_STANDBY1, $PGU_STANDBY2"
}
