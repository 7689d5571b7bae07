#!/usr/bin/env bash
# The benchmark (not a test): pgusher vs PgBouncer vs PgBouncer+HAProxy vs direct, same
# cluster (a primary + 2 standbys on loopback), same pool settings, driven by pgbench in
# alternation (A B C D A B C D ...) so machine noise hits all alike. Reports tps, average and
# p99 latency, pooler CPU time per transaction (user+sys from /proc), pooler RSS, and the
# ratios, as results.md + results.csv + results.png in the output folder.
#
# usage: bash test/bench/bench.sh [--rounds N] [--duration SECONDS] [--out DIR] [--quick]
#   --quick: 1 round of 5 s, no idle-clients run (a smoke run)
#   --workloads a,b: only these workloads (reads_S writes_N connect_C extended_S many_500 idle)
#   --targets a,b: only these targets (pgusher pgbouncer pgbhap direct)
#   --host-cpu Q: give each PostgreSQL server its own CPU budget of Q CPUs (a cgroup quota), so
#     that on one machine a standby behaves like a separate host: spreading reads over two
#     standbys then adds capacity, as it does in production. Default 0.5; 0 = all servers
#     share the machine's CPUs (then a second standby adds nothing, on the same 2 cores).
#   --keep: leave the poolers and the cluster running after the report (for perf), until Enter
# Everything runs on 127.0.0.0/8. Bounded: rounds x workloads x targets x duration.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=3 DUR=10 OUT="$ROOT/bench-out" IDLE=5000 QUICK=0 ONLY_W="" ONLY_T="" KEEP=0 HOSTCPU=0.5
while (($#)); do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DUR=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--quick) QUICK=1; ROUNDS=1; DUR=5; shift ;;
	--workloads) ONLY_W=",$2,"; shift 2 ;;
	--targets) ONLY_T=",$2,"; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--host-cpu) HOSTCPU=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/pgusher-bench.XXXXXX)
chmod 0755 "$WORK"
say() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- setup
need=()
for p in build-essential cmake pkg-config libuv1-dev libssl-dev libc-ares-dev postgresql \
	postgresql-contrib pgbouncer haproxy gnuplot-nox; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
	say "installing ${need[*]}"
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
	DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null
	rm -f /usr/sbin/policy-rc.d
fi
cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
	cmake --build "$ROOT/build-bench" -j2 --target pgusher >/dev/null || { say "build failed"; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n 16384 2>/dev/null || true

export PGUSHER_CLUSTER_DIR=/tmp/pgusher-bench-cluster PGUSHER_PGPORT=15610
"$ROOT/test/integration/cluster.sh" start || { say "cluster failed"; exit 1; }
PORT=15610 P=127.0.0.1 S1=127.0.0.2 S2=127.0.0.3
PIDS=()
CGROUPS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	"$ROOT/test/integration/cluster.sh" stop >/dev/null 2>&1
	for g in "${CGROUPS[@]}"; do rmdir "$g" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT

# --host-cpu: each server (postmaster and every process it forks) in its own CPU cgroup.
HOSTCPU_NOTE="all servers share the machine's CPUs"
cap_servers() {
	local q=$1 n pm g p quota
	# A 10 ms period: the quota is spread finely, so throttling adds no 100 ms stalls.
	quota=$(awk -v q="$q" 'BEGIN {printf "%d", q * 10000}')
	for n in n0 n1 n2; do
		pm=$(head -n 1 "$PGUSHER_CLUSTER_DIR/$n/data/postmaster.pid" 2>/dev/null) || return 1
		if [[ -d /sys/fs/cgroup/cpu && -w /sys/fs/cgroup/cpu ]]; then # cgroup v1
			g=/sys/fs/cgroup/cpu/pgusher-bench-$n
			mkdir -p "$g" && echo 10000 >"$g/cpu.cfs_period_us" && echo "$quota" >"$g/cpu.cfs_quota_us" || return 1
		elif [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
			echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
			g=/sys/fs/cgroup/pgusher-bench-$n
			mkdir -p "$g" && echo "$quota 10000" >"$g/cpu.max" || return 1
		else
			return 1
		fi
		CGROUPS+=("$g")
		for p in $pm $(pgrep -P "$pm"); do echo "$p" >"$g/cgroup.procs" || return 1; done
	done
}
if [[ $HOSTCPU != 0 ]]; then
	if cap_servers "$HOSTCPU"; then
		HOSTCPU_NOTE="each PostgreSQL server limited to $HOSTCPU CPU (--host-cpu), like a separate host"
	else
		say "could not set CPU cgroups: running with shared CPUs"
	fi
fi
say "$HOSTCPU_NOTE"

printf '"postgres" ""\n"u_trust" ""\n' >"$WORK/userlist.txt"
common="pool_mode = transaction
default_pool_size = 20
max_client_conn = $((IDLE + 500))
auth_type = trust
auth_file = $WORK/userlist.txt
log_connections = 0
log_disconnections = 0
unix_socket_dir =
listen_addr = 127.0.0.1"

cat >"$WORK/pgusher.ini" <<EOF
[databases]
reads = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby
writes = host=$P port=$PORT dbname=testdb
[pgbouncer]
listen_port = 16610
logfile = $WORK/pgusher.log
$common
health_check_user = postgres
EOF
# PgBouncer 1.18 (Debian 12) has no host lists: reads go to one standby.
cat >"$WORK/pgbouncer.ini" <<EOF
[databases]
reads = host=$S1 port=$PORT dbname=testdb
writes = host=$P port=$PORT dbname=testdb
[pgbouncer]
listen_port = 16611
logfile = $WORK/pgbouncer.log
$common
EOF
cat >"$WORK/pgb-haproxy.ini" <<EOF
[databases]
reads = host=127.0.0.1 port=16620 dbname=testdb
writes = host=$P port=$PORT dbname=testdb
[pgbouncer]
listen_port = 16612
logfile = $WORK/pgb-haproxy.log
$common
EOF
cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen standbys
    bind 127.0.0.1:16620
    balance roundrobin
    server s1 $S1:$PORT check inter 1s fall 3 rise 2
    server s2 $S2:$PORT check inter 1s fall 3 rise 2
EOF
chown -R postgres "$WORK"
start() { # name cmd...
	local name=$1
	shift
	"$@" >"$WORK/$name.out" 2>&1 &
	PIDS+=($!)
	eval "PID_$name=$!"
}
start_as_pg() { # name cmd...: PgBouncer refuses to run as root
	local name=$1
	shift
	runuser -u postgres -- bash -c "ulimit -n $(ulimit -n); exec $*" >"$WORK/$name.out" 2>&1 &
	PIDS+=($!)
	eval "PID_$name=$!"
}
start pgusher "$ROOT/build-bench/pgusher" "$WORK/pgusher.ini"
start_as_pg pgbouncer /usr/sbin/pgbouncer "$WORK/pgbouncer.ini"
start_as_pg pgbhap /usr/sbin/pgbouncer "$WORK/pgb-haproxy.ini"
start haproxy /usr/sbin/haproxy -f "$WORK/haproxy.cfg" -db
sleep 3
# runuser forks: the PgBouncer process is its child.
PID_pgbouncer=$(pgrep -P "$PID_pgbouncer" | head -n 1)
PID_pgbhap=$(pgrep -P "$PID_pgbhap" | head -n 1)
for p in 16610 16611 16612; do
	psql -X -At -h 127.0.0.1 -p $p -U u_trust reads -c 'select 1' >/dev/null || {
		say "pooler on $p not answering"
		tail -n 5 "$WORK"/*.out "$WORK"/*.log >&2
		exit 1
	}
done

# target -> port and the processes whose CPU counts as "the pooler"
port_of() { case $1 in pgusher) echo 16610 ;; pgbouncer) echo 16611 ;; pgbhap) echo 16612 ;; direct) echo "$PORT" ;; esac; }
procs_of() { case $1 in pgusher) echo "$PID_pgusher" ;; pgbouncer) echo "$PID_pgbouncer" ;; pgbhap) echo "$PID_pgbhap $PID_haproxy" ;; direct) echo "" ;; esac; }
host_of() { # direct: reads to a standby, writes to the primary
	if [[ $1 == direct ]]; then [[ $2 == reads ]] && echo "$S1" || echo "$P"; else echo 127.0.0.1; fi
}
dbname_of() { [[ $1 == direct ]] && echo testdb || echo "$2"; }
cpu_ticks() { local t=0 p; for p in $1; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
sys_ticks() { local t=0 p; for p in $1; do t=$((t + $(awk '{print $15}' "/proc/$p/stat"))); done; echo $t; }
ctx_switches() { # voluntary + involuntary context switches of the processes
	local t=0 p
	for p in $1; do t=$((t + $(awk '/ctxt_switches/{n += $2} END {print n}' "/proc/$p/status"))); done
	echo $t
}
rss_kb() { local t=0 p; for p in $1; do t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status"))); done; echo $t; }
HZ=$(getconf CLK_TCK)

# workload: name db clients pgbench-args
WORKLOADS=(
	"reads_S reads 50 -S"
	"writes_N writes 20 -N"
	"connect_C reads 20 -S -C"
	"extended_S reads 50 -S -M extended"
	"many_500 reads 500 -S"
)
TARGETS=(pgusher pgbouncer pgbhap direct)
picked() { [[ -z $1 || $1 == *",$2,"* ]]; } # list name
echo "workload,target,round,tps,lat_avg_ms,lat_p99_ms,cpu_us_per_xact,rss_kb,failed,sys_pct,cs_per_xact" >"$OUT/results.csv"

run_one() { # workload target round
	local name=$1 db=$2 clients=$3 target=$5 round=$6
	local args=$4
	[[ $target == direct && $clients -gt 250 ]] && return # the server's max_connections
	local procs c0 c1 out lat p99 tps failed rss dir
	procs=$(procs_of "$target")
	dir=$WORK/log.$name.$target.$round
	mkdir -p "$dir"
	c0=$(cpu_ticks "$procs") s0=$(sys_ticks "$procs") x0=$(ctx_switches "$procs")
	out=$(cd "$dir" && timeout $((DUR + 60)) pgbench -n $args -T "$DUR" -c "$clients" -j 2 \
		-l --sampling-rate=0.2 -h "$(host_of "$target" "$db")" -p "$(port_of "$target")" \
		-U u_trust "$(dbname_of "$target" "$db")" 2>&1)
	c1=$(cpu_ticks "$procs") s1=$(sys_ticks "$procs") x1=$(ctx_switches "$procs")
	rss=$(rss_kb "$procs")
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	p99=$(cat "$dir"/pgbench_log.* 2>/dev/null | awk '{print $3}' | sort -n |
		awk '{a[NR]=$1} END {if (NR) printf "%.3f", a[int(NR*0.99)]/1000; else print ""}')
	local xacts cpu_per sys_pct="" cs_per=""
	xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	cpu_per=""
	[[ -n $procs && -n $xacts && $xacts -gt 0 ]] &&
		cpu_per=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v x="$xacts" 'BEGIN {printf "%.2f", t * 1e6 / hz / x}') &&
		cs_per=$(awk -v n=$((x1 - x0)) -v x="$xacts" 'BEGIN {printf "%.2f", n / x}')
	[[ -n $procs ]] && ((c1 > c0)) && sys_pct=$(awk -v s=$((s1 - s0)) -v t=$((c1 - c0)) 'BEGIN {printf "%.0f", 100 * s / t}')
	rm -rf "$dir"
	echo "$name,$target,$round,${tps:-0},${lat:-},${p99:-},${cpu_per:-},${rss:-},${failed:-?},$sys_pct,$cs_per" >>"$OUT/results.csv"
	say "$name $target round $round: tps=${tps:-?} lat=${lat:-?}ms p99=${p99:-?}ms cpu/xact=${cpu_per:-n/a}us (${sys_pct:-?}% kernel, ${cs_per:-?} ctx switches/xact) failed=${failed:-?}"
}

for ((r = 1; r <= ROUNDS; r++)); do
	for w in "${WORKLOADS[@]}"; do
		read -r name db clients args <<<"$w"
		picked "$ONLY_W" "$name" || continue
		for t in "${TARGETS[@]}"; do
			picked "$ONLY_T" "$t" || continue
			run_one "$name" "$db" "$clients" "$args" "$t" "$r"
		done
	done
done

# Idle clients: RSS per idle client connection (pooler only).
if ((!QUICK)) && picked "$ONLY_W" idle; then
	printf '\\sleep 40 s\n' >"$WORK/idle.sql"
	for t in pgusher pgbouncer; do
		picked "$ONLY_T" "$t" || continue
		procs=$(procs_of "$t")
		before=$(rss_kb "$procs")
		pgbench -n -f "$WORK/idle.sql" -t 1 -c "$IDLE" -j 2 -h 127.0.0.1 -p "$(port_of "$t")" \
			-U u_trust reads >"$WORK/idle.$t.out" 2>&1 &
		idle_pid=$!
		# Measure once every client is connected (bounded wait), while they all sleep.
		for ((i = 0; i < 60; i++)); do
			n=$(ss -Htn state established "( sport = :$(port_of "$t") )" 2>/dev/null | wc -l)
			((n >= IDLE)) && break
			sleep 0.5
		done
		sleep 1
		during=$(rss_kb "$procs")
		say "idle $t: $n client connections established when measured"
		kill "$idle_pid" 2>/dev/null
		wait "$idle_pid"
		per=$(awk -v a="$before" -v b="$during" -v n="$IDLE" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}')
		echo "idle_$IDLE,$t,1,,,,,$during,bytes_per_client=$per,," >>"$OUT/results.csv"
		say "idle $t: rss $before -> $during kB, $per bytes per idle client"
	done
fi

# ---------------------------------------------------------------- report (medians)
python3 "$ROOT/test/bench/report.py" "$OUT" "$HOSTCPU_NOTE"
gnuplot <<EOF 2>/dev/null || say "gnuplot failed (results.md is still there)"
set terminal pngcairo size 1000,500 noenhanced
set output "$OUT/results.png"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "transactions per second"
set key top right
set xtics rotate by -20
plot for [i=2:5] "$OUT/tps.dat" using i:xtic(1) title columnheader(i)
EOF
say "results in $OUT (results.md, results.csv, results.png)"
if ((KEEP)); then
	say "poolers still running: pgusher pid $PID_pgusher (port 16610), PgBouncer pid $PID_pgbouncer (16611); Enter stops them"
	read -r _ || sleep 3600
fi
