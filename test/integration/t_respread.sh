#!/usr/bin/env bash
# Story: balancing holds for real applications.
#  (a) clients that set session parameters (SET TIME ZONE / DateStyle, options=-c,
#      application_name, IntervalStyle tracked by track_extra_parameters; psycopg2 and
#      psycopg 3) are spread like clients that set nothing, and every host they land on
#      answers with their values;
#  (b) a standby that was stopped and comes back gets its share of a busy pool within 2 s of
#      being marked up, with no failed transaction while servers move over;
#  (c) the same for a standby excluded for lag that catches up;
#  (d) the same for a standby added by a RELOAD.
# Shares are counted by the standbys themselves (pg_stat_database), not by pgusher. Their
# counters lag by up to a second per backend, which makes the measured share of a host that
# is ramping up smaller than the real one, never larger.
# Runs its own cluster (it stops nodes and pauses replay).
PGU_OWN_CLUSTER=respread:15540
. "$(dirname "$0")/lib.sh"
P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT
PY=/usr/bin/python3 # Debian's, with python3-psycopg2 and python3-psycopg

ini() { # hosts-of-reads
	cat <<EOF
[databases]
reads = host=$1 port=$PORT dbname=testdb target_session_attrs=standby max_replica_lag=1
[pgbouncer]
pool_mode = transaction
default_pool_size = 10
track_extra_parameters = IntervalStyle
health_check_user = postgres
health_check_period = 1
health_check_timeout = 1
health_check_fall = 2
health_check_rise = 2
EOF
}
pgu_start < <(ini "$S1,$S2")
both_up() { pgu_host_is reads "$S1" 5 standby && pgu_host_is reads "$S2" 5 standby; }
pgu_wait_for 15 "$S1 and $S2 up as standbys" both_up

# ------------------------------------------------------------------------------ (a)
check "(a) clients that SET session parameters are spread within 15 % of even, with their values on every host"
cat >"$PGU_TMP/setclients.py" <<'EOF'
import sys, threading, collections
port, kind, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
CASES = [  # (connect extras, SQL run once after connecting, setting, expected value)
    ({}, "SET TIME ZONE 'UTC'", "TimeZone", "UTC"),
    ({}, "SET TIME ZONE 'Asia/Tokyo'", "TimeZone", "Asia/Tokyo"),
    ({}, "SET DateStyle TO SQL, DMY", "DateStyle", "SQL, DMY"),
    ({"options": "-c TimeZone=Europe/Paris"}, None, "TimeZone", "Europe/Paris"),
    ({"application_name": "django-ish"}, None, "application_name", "django-ish"),
    # IntervalStyle: tracked through track_extra_parameters (PostgreSQL 15 reports it; it
    # does not report search_path, so no pooler can carry that one across servers)
    ({}, "SET IntervalStyle TO iso_8601", "IntervalStyle", "iso_8601"),
    ({}, None, "TimeZone", None),  # sets nothing: the server's default, whatever it is
]
hosts = collections.Counter()
errors = []
lock = threading.Lock()
def connect(extra):
    kw = dict(host="127.0.0.1", port=port, dbname="reads", user="u_trust", **extra)
    if kind == "psycopg2":
        import psycopg2
        c = psycopg2.connect(**kw)
        c.autocommit = True
    else:
        import psycopg
        c = psycopg.connect(autocommit=True, **kw)  # prepares after 5 executions (default)
    return c
def run(case):
    extra, sql, name, want = case
    try:
        c = connect(extra)
        cur = c.cursor()
        if sql:
            cur.execute(sql)
        for _ in range(n):
            cur.execute("select host(inet_server_addr()), current_setting(%s)", (name,))
            host, got = cur.fetchone()
            with lock:
                hosts[host] += 1
                if want is not None and got != want:
                    errors.append(f"{name}={got!r} on {host}, want {want!r}")
        c.close()
    except Exception as e:
        with lock:
            errors.append(f"{type(e).__name__}: {e}")
ts = [threading.Thread(target=run, args=(case,)) for case in CASES]
for t in ts: t.start()
for t in ts: t.join()
print(" ".join(f"{h}={k}" for h, k in sorted(hosts.items())))
for e in errors[:10]: print("ERROR", e)
EOF
# On a warm pool (servers on both hosts), as an application's would be: the first
# transactions of a cold pool go where the first servers are.
pgu_try pgbench -n -S -c 5 -j 1 -t 40 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
assert_ok "pool warmed up"
for kind in psycopg2 psycopg3; do
	pgu_try timeout 60 "$PY" "$PGU_TMP/setclients.py" "$PGU_PORT" "$kind" 60
	assert_ok "$kind clients ran"
	echo "   $kind: $PGU_OUT"
	assert_not_contains "$PGU_OUT" "ERROR" "$kind: every answer carries the client's own setting"
	n1=$(sed -n "s/.*$S1=\([0-9]*\).*/\1/p" <<<"$PGU_OUT") n2=$(sed -n "s/.*$S2=\([0-9]*\).*/\1/p" <<<"$PGU_OUT")
	((${n1:-0} + ${n2:-0} == 420)) || fail "$kind: expected 420 answers, got $S1=${n1:-0} $S2=${n2:-0}"
	# even = 210 each; within 15 %: 178.5 .. 241.5
	((n1 * 100 >= 210 * 85 && n1 * 100 <= 210 * 115)) ||
		fail "$kind: $S1 served $n1 of 420 transactions, not within 15 % of 210"
	echo "   ok: $kind spread $n1 / $n2"
done

# ------------------------------------------------------------------------------ helpers
# load_start SECONDS: pgbench -S -c 10 on reads in the background, per-transaction log kept.
load_start() {
	rm -f "$PGU_TMP"/pbl.*
	pgu_bg bash -c "cd '$PGU_TMP' && pgbench -n -S -T $1 -c 10 -j 2 -l --log-prefix=pbl -h 127.0.0.1 -p $PGU_PORT -U u_trust reads >'$PGU_TMP/pb.out' 2>&1"
	LOAD_PID=$PGU_BG_PID
	sleep 1
}
# load_finish WHAT: wait for the load, assert no failed transaction, report the slowest one.
load_finish() {
	wait "$LOAD_PID" || true
	PGU_BG_PIDS=()
	grep -q 'actually processed' "$PGU_TMP/pb.out" || fail "$1: pgbench did not finish: $(cat "$PGU_TMP/pb.out")"
	grep -q 'number of failed transactions: 0 ' "$PGU_TMP/pb.out" ||
		fail "$1: failed transactions: $(grep -E 'failed|error|abort' "$PGU_TMP/pb.out" | head -5)"
	local max
	max=$(cat "$PGU_TMP"/pbl.* | awk '$3 > m {m = $3} END {printf "%.1f", m / 1000}')
	echo "   ok: $1: no failed transaction; slowest $max ms"
	# a stall behind a login or a timeout would take seconds
	awk -v m="$max" 'BEGIN {exit !(m < 3000)}' || fail "$1: a transaction took $max ms"
}
# share_after_up HOST WHAT: wait until HOST is eligible; its share of the standbys'
# transactions must be at least 35 % by 2 s after that. Counted from 1 s to 3 s after it was
# marked up: a backend's counters reach pg_stat_database up to a second late, so a window
# that starts at once would also count transactions of the second before, all on the other
# host. The share over the first 2 s is printed too.
share_after_up() {
	local host=$1 what=$2 a1 a2 b1 b2 c1 c2 d1 d2
	pgu_wait_for 30 "$host eligible again ($what)" pgu_host_is reads "$host" 8 1
	a1=$(pgu_commits "$S1") a2=$(pgu_commits "$S2")
	sleep 1
	b1=$(pgu_commits "$S1") b2=$(pgu_commits "$S2")
	sleep 1
	c1=$(pgu_commits "$S1") c2=$(pgu_commits "$S2")
	sleep 1
	d1=$(($(pgu_commits "$S1") - b1)) d2=$(($(pgu_commits "$S2") - b2))
	local mine=$d2 first=$((c2 - a2)) firstall=$((c1 - a1 + c2 - a2))
	[[ $host == "$S1" ]] && mine=$d1 first=$((c1 - a1))
	echo "   $host: $((first * 100 / (firstall > 0 ? firstall : 1))) % of the reads in the first 2 s after it was marked up; from 1 s to 3 s: $S1 $d1, $S2 $d2 ($(pgu_admin 'SHOW HOSTS' | awk -F'|' '{printf "%s active=%s idle=%s login=%s; ", $2, $9, $10, $11}'))"
	((d1 + d2 > 100)) || fail "$what: too few transactions counted ($d1 + $d2)"
	((mine * 100 >= (d1 + d2) * 35)) ||
		pgu_soft_fail "$what: $host carried $((mine * 100 / (d1 + d2))) % of the reads from 1 s to 3 s after it was marked up (want >= 35 %)"
}

# ------------------------------------------------------------------------------ (b)
check "(b) a stopped standby that comes back carries >= 35 % of a busy pool within 2 s"
pgu_node_ctl n2 -m immediate -w stop
pgu_wait_for 15 "$S2 marked down" pgu_host_is reads "$S2" 4 down
load_start 12
pgu_node_start n2
share_after_up "$S2" "restarted standby"
load_finish "restarted standby"

# ------------------------------------------------------------------------------ (c)
check "(c) a standby excluded for lag that catches up carries >= 35 % within 2 s"
pgu_direct "$S2" "select pg_wal_replay_pause()" >/dev/null
pgu_direct "$P" "create table if not exists respread_t(i int)" >/dev/null
lagging() {
	pgu_direct "$P" "insert into respread_t values (1)" >/dev/null
	pgu_host_is reads "$S2" 8 0
}
pgu_wait_for 20 "$S2 excluded for lag (max_replica_lag=1)" lagging
load_start 12
pgu_direct "$S2" "select pg_wal_replay_resume()" >/dev/null
share_after_up "$S2" "caught-up standby"
load_finish "caught-up standby"

# ------------------------------------------------------------------------------ (d)
check "(d) a standby added by RELOAD carries >= 35 % within 2 s of being marked up"
set_reads_hosts() { sed -i "s|^reads = host=[^ ]*|reads = host=$1|" "$PGU_INI"; }
set_reads_hosts "$S1"
pgu_reload
only_s1() { [[ -z $(pgu_host_field reads "$S2" 4) ]]; }
pgu_wait_for 10 "reads lists only $S1" only_s1
load_start 12
set_reads_hosts "$S1,$S2"
pgu_reload
share_after_up "$S2" "standby added by RELOAD"
load_finish "standby added by RELOAD"

pgu_finish
