#!/usr/bin/env bash
# The scaling benchmark (not a test, issue #16): how pgusher's cost grows with idle clients,
# pools, login storms and host-list length, side by side with PgBouncer 1.25.2, alternating
# (pgusher, PgBouncer, next point, ..., next round). Each point gets a fresh pooler, so RSS and
# SHOW MEM are that point's alone. Series:
#   idle   0 / 1k / 10k / 30k logged-in idle clients (test/bench/hold.py, source addresses
#          127.0.0.10-89) while 50 active clients run pgbench -S on the primary: tps, pooler
#          CPU/xact, p99, RSS (and RSS per idle client), SHOW MEM, then pooler CPU with
#          everything idle for --idle-seconds (timers, janitor)
#   pools  1 / 100 / 1000 databases (db0001.., all on the primary's testdb); each gets one
#          login (so its pool and one server connection exist), then 5 x 10 clients run -S on
#          the first 5 (db0001 alone for 1 pool): the same figures
#   storm  2000 clients connect at once with SCRAM (auth_type = scram-sha-256, a SCRAM secret
#          in the auth file), each runs SELECT 1: time until all are served, failures, pooler
#          CPU per login. The clients are test/bench/swarm.c (C, epoll, built into the work
#          dir), whose cost per login stays below the poolers'; hold.py's cost would hide theirs
#   hosts  2 / 8 / 32 addresses in `reads`' host list (the two standbys, each listening on
#          16 extra addresses 127.0.2.x / 127.0.3.x): pgbench -S (50 clients) and -S -C (20
#          clients): tps and CPU/xact (the hand-out cost)
# Both poolers: transaction mode, default_pool_size = 20, listen_backlog = 4096, the same host
# lists (PgBouncer: load_balance_hosts = round-robin; pgusher: target_session_attrs=standby).
# Output in --out: results.csv (every run), results.md (medians), one PNG per series.
#
# usage: bash test/bench/scale.sh [--rounds N] [--duration S] [--idle-seconds S]
#          [--series idle,pools,storm,hosts] [--out DIR] [--quick]
#   --quick: 1 round of 3 s, idle 0/2000, pools 1/100, storm 300, hosts 2/8 (a smoke run)
# Idle points above what the fd hard limit allows (a pooler needs one fd per client) are
# lowered to fit, and the report says so. Own cluster on 127.0.0.1-3:15620 (+127.0.2-3.x),
# poolers on 16650 (pgusher) and 16651 (PgBouncer); to run beside another run, override them
# with PGUSHER_SCALE_PGPORT, PGUSHER_SCALE_CLUSTER_DIR and PGUSHER_SCALE_POOLER_PORT (pgusher's;
# PgBouncer gets the next one). Loopback only; bounded by
# rounds x points x (duration + idle-seconds + set-up timeouts).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=2 DUR=8 IDLESECS=5 OUT="$ROOT/scale-out" SERIES=idle,pools,storm,hosts
IDLE_POINTS="0 1000 10000 30000" POOL_POINTS="1 100 1000" HOST_POINTS="2 8 32" STORM_N=2000
while (($#)); do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DUR=$2; shift 2 ;;
	--idle-seconds) IDLESECS=$2; shift 2 ;;
	--series) SERIES=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--quick)
		ROUNDS=1 DUR=3 IDLESECS=2 IDLE_POINTS="0 2000" POOL_POINTS="1 100" HOST_POINTS="2 8" STORM_N=300
		shift
		;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
say() { echo "scale: $*" >&2; }
. "$ROOT/test/bench/lib.sh"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.err "$OUT"/*.png "$OUT"/results.*
WORK=$(mktemp -d /tmp/pgusher-scale.XXXXXX)
chmod 0755 "$WORK"

bench_install build-essential cmake pkg-config libuv1-dev libssl-dev libc-ares-dev postgresql \
	postgresql-contrib libevent-2.1-7 libc-ares2 libssl3 python3-matplotlib ||
	{ say "apt-get failed"; exit 1; }
bench_build "$ROOT" || { say "build failed"; exit 1; }
cc -O2 -Wall -Wextra -o "$WORK/swarm" "$ROOT/test/bench/swarm.c" -lcrypto || { say "swarm build failed"; exit 1; }
bench_find_pgbouncer "$ROOT" || { say "PgBouncer 1.25.2 not found (set PGUSHER_BENCH_PGBOUNCER)"; exit 1; }
say "PgBouncer: $PGBOUNCER ($PGB_VERSION)"

# fd limits: as high as the hard limit lets us (raising the hard limit needs CAP_SYS_RESOURCE);
# the poolers and hold.py inherit it. An idle point needs that many client fds plus ~300.
ulimit -Hn 1048576 2>/dev/null || ulimit -Hn 131072 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDLIM=$(ulimit -n)
[[ $FDLIM == unlimited ]] && FDLIM=1048576
FD_NOTE="fd limit $FDLIM"
pts=""
for n in $IDLE_POINTS; do
	if ((n > FDLIM - 300)); then
		FD_NOTE+="; idle point $n lowered to $((FDLIM - 300)) (fd hard limit $FDLIM)"
		n=$((FDLIM - 300))
	fi
	pts+="$n "
done
IDLE_POINTS=$pts
say "$FD_NOTE"

PORT=${PGUSHER_SCALE_PGPORT:-15620}
export PGUSHER_CLUSTER_DIR=${PGUSHER_SCALE_CLUSTER_DIR:-/tmp/pgusher-scale-cluster} PGUSHER_PGPORT=$PORT
"$ROOT/test/integration/cluster.sh" start || { say "cluster failed"; exit 1; }
eval "$("$ROOT/test/integration/cluster.sh" env)"
PIDS=() HOLDER=""
cleanup() { # PIDS: only the current point's pooler (and runuser); HOLDER: its hold.py
	local p
	for p in "${PIDS[@]}" $HOLDER; do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	for p in "${PIDS[@]}" $HOLDER; do kill -KILL "$p" 2>/dev/null; done
	"$ROOT/test/integration/cluster.sh" stop >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Servers: 1,500 connections (1,000 pools each keep one; a standby needs at least the
# primary's value, so standbys first), the standbys also on 16 extra addresses each.
restart_node() { # node: a second try (start) after 3 s if the restart fails
	local pgctl=(runuser -u postgres -- "$PGUSHER_PGBIN/pg_ctl" -D "$PGUSHER_CLUSTER_DIR/$1/data" -w -t 60
		-l "$PGUSHER_CLUSTER_DIR/$1.log")
	"${pgctl[@]}" restart -m fast >/dev/null 9>&- || { sleep 3 && "${pgctl[@]}" start >/dev/null 9>&-; } || {
		tail -n 5 "$PGUSHER_CLUSTER_DIR/$1.log" >&2
		say "restart of $1 failed"
		exit 1
	}
}
for i in 1 2 0; do
	conf=$PGUSHER_CLUSTER_DIR/n$i/data/postgresql.conf
	grep -q '^# scale.sh' "$conf" && continue
	{
		echo "# scale.sh"
		echo "max_connections = 1500"
		if ((i)); then
			a="127.0.0.$((i + 1))"
			for ((k = 1; k <= 16; k++)); do a+=",127.0.$((i + 1)).$k"; done
			echo "listen_addresses = '$a'"
		fi
	} >>"$conf"
	restart_node "n$i"
done
hosts_list() { # N: N addresses alternating between the two standbys
	local n=$1 k l=""
	if ((n <= 2)); then echo "127.0.0.2,127.0.0.3"; return; fi
	for ((k = 1; k <= n / 2; k++)); do l+="127.0.2.$k,127.0.3.$k,"; done
	echo "${l%,}"
}
for a in $(hosts_list 32 | tr , ' '); do
	psql -X -At -h "$a" -p $PORT -U postgres testdb -c 'select 1' >/dev/null ||
		{ say "standby address $a not answering"; exit 1; }
done

# Auth file: postgres (admin console) with a plain password, u_trust, and u_scram with its
# SCRAM secret as the server stores it (the poolers log in to the server with the client's
# SCRAM keys, which only works with the very same secret; its password is scrampass, cluster.sh).
SECRET=$(psql -X -At -h 127.0.0.1 -p $PORT -U postgres postgres -c "select rolpassword from pg_authid where rolname = 'u_scram'")
[[ $SECRET == SCRAM-SHA-256* ]] || { say "no SCRAM secret for u_scram"; exit 1; }
printf '"postgres" "adminpw"\n"u_trust" ""\n"u_scram" "%s"\n' "$SECRET" >"$WORK/userlist.txt"
export PGPASSWORD=adminpw
chown -R postgres "$WORK"

HOLD="$ROOT/test/bench/hold.py"
POOLER_PORT=${PGUSHER_SCALE_POOLER_PORT:-16650}
port_of() { [[ $1 == pgusher ]] && echo "$POOLER_PORT" || echo $((POOLER_PORT + 1)); }
# pooler_ini target max_client_conn auth npools nhosts [setting lines]
pooler_ini() {
	local t=$1 i dbs="" extra=${6:-}
	for ((i = 1; i <= $4; i++)); do dbs+="$(printf 'db%04d' "$i") = host=127.0.0.1 port=$PORT dbname=testdb
"; done
	if [[ $t == pgusher ]]; then
		extra+="
health_check_user = postgres"
		dbs+="reads = host=$(hosts_list "$5") port=$PORT dbname=testdb target_session_attrs=standby"
	else
		dbs+="reads = host=$(hosts_list "$5") port=$PORT dbname=testdb load_balance_hosts=round-robin"
	fi
	cat >"$WORK/$t.ini" <<INI
[databases]
testdb = host=127.0.0.1 port=$PORT dbname=testdb
$dbs
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $(port_of "$t")
unix_socket_dir =
logfile = $WORK/$t.log
pool_mode = transaction
default_pool_size = 20
max_client_conn = $2
listen_backlog = 4096
auth_type = $3
auth_file = $WORK/userlist.txt
admin_users = postgres
log_connections = 0
log_disconnections = 0
server_tls_sslmode = disable
$extra
INI
	chown postgres "$WORK/$t.ini"
}
POOLER="" # the running pooler's pid
start_pooler() { # target
	local t=$1 i
	: >"$WORK/$t.log"
	chown postgres "$WORK/$t.log"
	if [[ $t == pgusher ]]; then
		start "$t" "$ROOT/build-bench/pgusher" "$WORK/$t.ini"
	else
		start_as_pg "$t" "$PGBOUNCER" "$WORK/$t.ini"
		bench_pg_child "$t" || { say "PgBouncer did not start"; return 1; }
	fi
	POOLER=PID_$t
	POOLER=${!POOLER}
	for ((i = 0; i < 50; i++)); do
		psql -X -At -h 127.0.0.1 -p "$(port_of "$t")" -U postgres pgbouncer -c 'show version' >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	say "$t not answering"
	tail -n 5 "$WORK/$t.out" "$WORK/$t.log" >&2
	return 1
}
stop_pid() { # pid: TERM, then KILL after 5 s
	local p=$1 i
	kill -TERM "$p" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null
}
stop_pooler() {
	local p
	stop_pid "$POOLER"
	for p in "${PIDS[@]}"; do stop_pid "$p"; done
	wait 2>/dev/null
	PIDS=() POOLER=""
}
show_mem_kb() { # port: SHOW MEM's memtotal, summed
	psql -X -At -F ' ' -h 127.0.0.1 -p "$1" -U postgres pgbouncer -c 'show mem' 2>/dev/null |
		awk '{n += $5} END {printf "%d", n / 1024}'
}
# hold_start target args...: a hold.py in the background; waits (bounded) for its HELD/LOGINS
# line; HOLDER = its pid
hold_start() {
	local t=$1 i
	shift
	rm -f "$WORK/hold.out" "$WORK/hold.err" # the background shell truncates them only later
	python3 "$HOLD" "$@" --port "$(port_of "$t")" --max-seconds 600 >"$WORK/hold.out" 2>"$WORK/hold.err" &
	HOLDER=$!
	for ((i = 0; i < 1200; i++)); do
		grep -q '^HELD\|^LOGINS' "$WORK/hold.out" 2>/dev/null && break
		kill -0 "$HOLDER" 2>/dev/null || break
		sleep 0.1
	done
	HELD=$(grep -m 1 '^HELD\|^LOGINS' "$WORK/hold.out" 2>/dev/null)
	[[ -n $HELD ]] || HELD="none: $(head -c 200 "$WORK/hold.err")"
	[[ -s $WORK/hold.err ]] && cp "$WORK/hold.err" "$OUT/hold.$t.$$.$SECONDS.err"
}
hold_stop() { [[ -n $HOLDER ]] && stop_pid "$HOLDER"; wait "$HOLDER" 2>/dev/null; HOLDER=""; }

# wait_servers_below N: until the cluster has fewer than N client backends (bounded, 15 s)
wait_servers_below() {
	local i c
	for ((i = 0; i < 75; i++)); do
		c=$(psql -X -At -h 127.0.0.1 -p $PORT -U postgres postgres -c \
			"select count(*) from pg_stat_activity where backend_type = 'client backend' and datname = 'testdb'")
		((c < $1)) && return 0
		sleep 0.2
	done
	say "still $c servers on testdb"
	return 1
}

# pgbench_run target clients-per-db "db..." args...: one pgbench per database, concurrently;
# sets TPS XACTS P99 FAILED (failed transactions + aborted clients) CPU_US (pooler, per xact)
pgbench_run() {
	local t=$1 per=$2 dbs=$3 d dir=$WORK/pgb c0 c1 k=0 pids=()
	shift 3
	rm -rf "$dir" && mkdir -p "$dir"
	c0=$(cpu_ns "$POOLER")
	for d in $dbs; do
		(cd "$dir" && timeout $((DUR + 60)) pgbench -n "$@" -T "$DUR" -c "$per" -j 1 -l --sampling-rate=0.2 \
			-h 127.0.0.1 -p "$(port_of "$t")" -U u_trust "$d" >"$dir/out.$k" 2>&1) &
		pids+=($!)
		k=$((k + 1))
	done
	wait "${pids[@]}"
	c1=$(cpu_ns "$POOLER")
	TPS=$(cat "$dir"/out.* | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | awk '{n += $1} END {printf "%.1f", n}')
	XACTS=$(cat "$dir"/out.* | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' | awk '{n += $1} END {print n + 0}')
	FAILED=$(cat "$dir"/out.* | awk '/^number of failed transactions: /{n += $5} /aborted in command|aborted while/{n++} END {print n + 0}')
	((XACTS > 0)) || FAILED="$FAILED+no_result"
	P99=$(pgbench_p99 "$dir")
	CPU_US=$(awk -v c=$((c1 - c0)) -v x="$XACTS" 'BEGIN {if (x) printf "%.2f", c / 1000 / x}')
}
idle_cpu_pct() { # the pooler's CPU (% of one core) over IDLESECS with no traffic
	local c0 c1
	sleep 1
	c0=$(cpu_ns "$POOLER")
	sleep "$IDLESECS"
	c1=$(cpu_ns "$POOLER")
	awk -v c=$((c1 - c0)) -v s="$IDLESECS" 'BEGIN {printf "%.3f", c / 1e7 / s}'
}

echo "series,point,target,round,tps,p99_ms,cpu_us_per_xact,rss_kb,rss_per_client_b,showmem_kb,idle_cpu_pct,storm_s,failed,status" >"$OUT/results.csv"
row() { # series point target round; the globals of the run
	echo "$1,$2,$3,$4,${TPS:-},${P99:-},${CPU_US:-},${RSS:-},${PERCLIENT:-},${SHOWMEM:-},${IDLECPU:-},${STORM_S:-},${FAILED:-},${STATUS:-ok}" >>"$OUT/results.csv"
	say "$1 $2 $3 round $4: tps=${TPS:-} p99=${P99:-}ms cpu/xact=${CPU_US:-}us rss=${RSS:-}kB per-client=${PERCLIENT:-}B show-mem=${SHOWMEM:-}kB idle-cpu=${IDLECPU:-}% storm=${STORM_S:-}s failed=${FAILED:-} ${STATUS:-ok}"
}

run_point() { # series point target round
	local s=$1 n=$2 t=$3 r=$4 rss0 maxc=500 auth=trust npools=0 nhosts=2 dbs i settings=""
	TPS="" P99="" CPU_US="" RSS="" PERCLIENT="" SHOWMEM="" IDLECPU="" STORM_S="" FAILED="" STATUS=ok
	case $s in
	idle) maxc=$((n + 500)) ;;
	pools) maxc=$((n + 500)) npools=$n settings="server_idle_timeout = 2" ;;
	storm) maxc=$((n + 500)) auth=scram-sha-256 ;;
	hosts_S | hosts_C) nhosts=$n ;;
	esac
	pooler_ini "$t" "$maxc" "$auth" "$npools" "$nhosts" "$settings"
	start_pooler "$t" || { STATUS=no_pooler; row "$@"; return; }
	if [[ $s != storm ]]; then
		psql -X -At -h 127.0.0.1 -p "$(port_of "$t")" -U u_trust testdb -c 'select 1' >/dev/null 2>&1
	fi
	rss0=$(rss_kb "$POOLER")
	case $s in
	idle)
		if ((n > 0)); then
			hold_start "$t" hold --n "$n" --db testdb --user u_trust --src-first $((10 + (r % 2) * 40))
			[[ $HELD == "HELD ok=$n failed=0" ]] || STATUS="held:${HELD// /_}"
		fi
		RSS=$(rss_kb "$POOLER") SHOWMEM=$(show_mem_kb "$(port_of "$t")")
		((n > 0)) && PERCLIENT=$(awk -v a="$rss0" -v b="$RSS" -v n="$n" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}')
		pgbench_run "$t" 50 testdb -S
		IDLECPU=$(idle_cpu_pct)
		hold_stop
		;;
	pools)
		if ((n > 1)); then
			hold_start "$t" logins --dbs "db:$n" --user u_trust --parallel 100
			[[ $HELD == "LOGINS ok=$n failed=0" ]] || STATUS="logins:${HELD// /_}"
			hold_stop
		fi
		# The pools stay; their idle servers go (server_idle_timeout = 2), so PostgreSQL
		# carries the same backends at every point and the figures are the pooler's.
		wait_servers_below 30 || STATUS=servers_left
		dbs=""
		for ((i = 0; i < 5; i++)); do dbs+="$(printf 'db%04d' $((i % n + 1))) "; done
		pgbench_run "$t" 10 "$dbs" -S
		RSS=$(rss_kb "$POOLER") SHOWMEM=$(show_mem_kb "$(port_of "$t")")
		IDLECPU=$(idle_cpu_pct)
		;;
	storm)
		local c0 c1 out
		c0=$(cpu_ns "$POOLER")
		out=$(timeout 120 "$WORK/swarm" --port "$(port_of "$t")" --n "$n" --db testdb --user u_scram \
			--password scrampass --timeout 60 2>"$WORK/storm.err")
		c1=$(cpu_ns "$POOLER")
		STORM_S=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")
		FAILED=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$out")
		local served
		served=$(sed -n 's/.*served=\([0-9]*\).*/\1/p' <<<"$out")
		[[ -n $served ]] || { STATUS="storm:$(head -c 100 "$WORK/storm.err" | tr ',\n' ';_')"; FAILED=$n; }
		[[ -s $WORK/storm.err ]] && cp "$WORK/storm.err" "$OUT/storm.$t.$r.err"
		CPU_US=$(awk -v c=$((c1 - c0)) -v x="${served:-0}" 'BEGIN {if (x) printf "%.2f", c / 1000 / x}')
		TPS=$(awk -v x="${served:-0}" -v s="${STORM_S:-0}" 'BEGIN {if (s > 0) printf "%.1f", x / s}')
		RSS=$(rss_kb "$POOLER") SHOWMEM=$(show_mem_kb "$(port_of "$t")")
		;;
	hosts_S) pgbench_run "$t" 50 reads -S ;;
	hosts_C) pgbench_run "$t" 20 reads -S -C ;;
	esac
	[[ -z $RSS ]] && RSS=$(rss_kb "$POOLER") SHOWMEM=$(show_mem_kb "$(port_of "$t")")
	[[ $FAILED == 0 || -z $FAILED ]] || [[ $STATUS != ok ]] || STATUS=failures
	stop_pooler
	row "$@"
}

picked() { [[ ,$SERIES, == *",$1,"* ]]; }
for ((r = 1; r <= ROUNDS; r++)); do
	for s in idle pools storm hosts_S hosts_C; do
		picked "${s%_*}" || continue
		case $s in
		idle) points=$IDLE_POINTS ;;
		pools) points=$POOL_POINTS ;;
		storm) points=$STORM_N ;;
		*) points=$HOST_POINTS ;;
		esac
		for n in $points; do
			for t in pgusher pgbouncer; do
				run_point "$s" "$n" "$t" "$r"
			done
		done
	done
done

# Debian's python3 (python3-matplotlib), not one from PATH (pyenv and the like)
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
"$PY" "$ROOT/test/bench/scale_report.py" "$OUT" "$PGB_VERSION; $FD_NOTE; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; rounds $ROUNDS, pgbench $DUR s, idle CPU over $IDLESECS s" ||
	say "report failed (results.csv is still there)"
say "results in $OUT (results.md, results.csv, *.png)"
