#!/usr/bin/env bash
# The benchmark (not a test): pgusher vs PgBouncer 1.25.2 vs PgBouncer 1.25.2+HAProxy vs direct,
# same cluster (a primary + 2 standbys on loopback), same pool settings, driven by pgbench in
# alternation (A B C D A B C D ...) so machine noise hits all alike. `reads` lists both standbys
# for pgusher and PgBouncer (host=a,b; PgBouncer with load_balance_hosts=round-robin); HAProxy
# balances them for the third target. Reports tps, average and p99 latency, pooler CPU time per
# transaction (user+sys from /proc), pooler RSS, failures per row (a row whose pgbench aborts is
# recorded as such, the run goes on), and the ratios, as results.md + results.csv + results.png.
# The tls_* rows run against a second instance of each pooler with client TLS (sslmode=require,
# a certificate this script makes with openssl) and server TLS (server_tls_sslmode=require; the
# cluster gets ssl=on); the plaintext instances say server_tls_sslmode=disable, pgbench sslmode
# is set per row.
#
# usage: bash test/bench/bench.sh [--rounds N] [--duration SECONDS] [--out DIR] [--quick]
#   --quick: 1 round of 5 s, no idle-clients run (a smoke run)
#   --workloads a,b: only these workloads (reads_S writes_N connect_C extended_S prepared_S set_reads_S
#     many_500 tls_reads_S tls_connect_C tls_resume_C idle); tls_resume_C is TLS churn whose
#     clients resume their sessions (test/bench/tls_churn.py: libpq never resumes)
#   --targets a,b: only these targets (pgusher pgbouncer pgbhap direct)
#   --host-cpu Q: give each PostgreSQL server its own CPU budget of Q CPUs (a cgroup quota), so
#     that on one machine a standby behaves like a separate host: spreading reads over two
#     standbys then adds capacity, as it does in production. Default 0.5; 0 = all servers
#     share the machine's CPUs (then a second standby adds nothing, on the same 2 cores).
#   --perf: perf record -g the pooler (pgusher and PgBouncer) during each of its runs; the
#     flat profile goes to OUT/perf.WORKLOAD.TARGET.ROUND.txt, the data beside it (.data, for
#     perf report -g caller -i ...); perf costs CPU: the CPU column of
#     those runs is not comparable with runs without --perf)
#   --tls-key rsa|ec: the certificate's key, RSA 2048 (default, the usual kind) or ECDSA P-256
#     (a TLS server's signature per full handshake costs ~14x less with it)
#   --keep: leave the poolers and the cluster running after the report (for perf), until Enter
# PgBouncer is /work/shared/ref/pgbouncer-1.25.2/pgbouncer (PGUSHER_BENCH_PGBOUNCER overrides).
# Everything runs on 127.0.0.0/8. Bounded: rounds x workloads x targets x duration.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=3 DUR=10 OUT="$ROOT/bench-out" IDLE=5000 QUICK=0 ONLY_W="" ONLY_T="" KEEP=0 HOSTCPU=0.5 PERF=0 TLSKEY=rsa
while (($#)); do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DUR=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--quick) QUICK=1; ROUNDS=1; DUR=5; shift ;;
	--workloads) ONLY_W=",$2,"; shift 2 ;;
	--targets) ONLY_T=",$2,"; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--perf) PERF=1; shift ;;
	--tls-key) TLSKEY=$2; shift 2 ;;
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
. "$ROOT/test/bench/lib.sh"
# libevent-2.1-7, libc-ares2 and libssl3: what the PgBouncer 1.25.2 binary links with.
bench_install build-essential cmake pkg-config libuv1-dev libssl-dev libc-ares-dev postgresql \
	postgresql-contrib libevent-2.1-7 libc-ares2 libssl3 openssl haproxy gnuplot-nox
bench_build "$ROOT" || { say "build failed"; exit 1; }
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

# workload: name db clients tls pgbench-args (tls: yes = the TLS instances, sslmode=require;
# leading PG*=value words are libpq environment for the clients: set_reads_S's clients carry
# session parameters that differ from the servers', as frameworks set them)
WORKLOADS=(
	"reads_S reads 50 no -S"
	"writes_N writes 20 no -N"
	"connect_C reads 20 no -S -C"
	"extended_S reads 50 no -S -M extended"
	"prepared_S reads 50 no -S -M prepared"
	"set_reads_S reads 50 no PGTZ=Asia/Tokyo PGAPPNAME=bench-app -S"
	"many_500 reads 500 no -S"
	"tls_reads_S reads 50 yes -S"
	"tls_connect_C reads 20 yes -S -C"
	"tls_resume_C reads 4 yes resume"
)
TARGETS=(pgusher pgbouncer pgbhap direct)
picked() { [[ -z $1 || $1 == *",$2,"* ]]; } # list name
WANT_TLS=0
for w in "${WORKLOADS[@]}"; do
	read -r name _ _ tls _ <<<"$w"
	[[ $tls == yes ]] && picked "$ONLY_W" "$name" && WANT_TLS=1
done

bench_find_pgbouncer "$ROOT" || { say "PgBouncer 1.25.2 not found (set PGUSHER_BENCH_PGBOUNCER)"; exit 1; }
say "PgBouncer: $PGBOUNCER ($PGB_VERSION)"

# TLS: one self-signed certificate (RSA 2048 unless --tls-key ec) for the servers and the
# poolers. Nothing verifies it (sslmode=require everywhere); each side pays a full handshake
# per new connection, as with a real certificate.
CERTS=$WORK/certs
case $TLSKEY in
rsa) KEYALG=(-newkey rsa:2048) ;;
ec) KEYALG=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
*) say "--tls-key: rsa or ec"; exit 2 ;;
esac
if ((WANT_TLS)); then
	mkdir -p "$CERTS"
	openssl req -x509 "${KEYALG[@]}" -nodes -days 2 -subj "/CN=127.0.0.1" \
		-addext "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3" \
		-keyout "$CERTS/server.key" -out "$CERTS/server.crt" 2>/dev/null || { say "openssl failed"; exit 1; }
	chmod 0600 "$CERTS/server.key"
	chown -R postgres "$CERTS"
	for h in $P $S1 $S2; do
		psql -X -q -o /dev/null -h "$h" -p "$PORT" -U postgres postgres -v ON_ERROR_STOP=1 <<SQL || { say "ssl=on failed on $h"; exit 1; }
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = '$CERTS/server.crt';
ALTER SYSTEM SET ssl_key_file = '$CERTS/server.key';
SELECT pg_reload_conf();
SQL
	done
	sleep 1
	for h in $P $S1 $S2; do
		[[ $(PGSSLMODE=require psql -X -At -h "$h" -p "$PORT" -U postgres postgres \
			-c 'select ssl from pg_stat_ssl where pid = pg_backend_pid()') == t ]] ||
			{ say "$h does not speak TLS"; exit 1; }
	done
fi

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
plain="server_tls_sslmode = disable"
tls="client_tls_sslmode = require
client_tls_key_file = $CERTS/server.key
client_tls_cert_file = $CERTS/server.crt
server_tls_sslmode = require"

# pooler ini: file port database-lines settings
pooler_ini() {
	cat >"$WORK/$1.ini" <<INI
[databases]
$3
writes = host=$P port=$PORT dbname=testdb
[pgbouncer]
listen_port = $2
logfile = $WORK/$1.log
$common
$4
INI
}
USHER_READS="reads = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby"
PGB_READS="reads = host=$S1,$S2 port=$PORT dbname=testdb load_balance_hosts=round-robin"
HAP_READS="reads = host=127.0.0.1 port=16620 dbname=testdb"
pooler_ini pgusher 16610 "$USHER_READS" "$plain
health_check_user = postgres"
pooler_ini pgbouncer 16611 "$PGB_READS" "$plain"
pooler_ini pgbhap 16612 "$HAP_READS" "$plain"
pooler_ini pgusher_tls 16613 "$USHER_READS" "$tls
health_check_user = postgres"
pooler_ini pgbouncer_tls 16614 "$PGB_READS" "$tls"
pooler_ini pgbhap_tls 16615 "$HAP_READS" "$tls"
cat >"$WORK/haproxy.cfg" <<HAP
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
HAP
chown -R postgres "$WORK"
INSTANCES="pgusher:16610 pgbouncer:16611 pgbhap:16612"
((WANT_TLS)) && INSTANCES+=" pgusher_tls:16613 pgbouncer_tls:16614 pgbhap_tls:16615"
for i in $INSTANCES; do
	n=${i%%:*}
	case $n in
	pgusher*) start "$n" "$ROOT/build-bench/pgusher" "$WORK/$n.ini" ;;
	*) start_as_pg "$n" "$PGBOUNCER" "$WORK/$n.ini" ;;
	esac
done
start haproxy /usr/sbin/haproxy -f "$WORK/haproxy.cfg" -db
sleep 3
# runuser forks: the PgBouncer process is its child.
for n in pgbouncer pgbhap pgbouncer_tls pgbhap_tls; do
	v=PID_$n
	[[ -n ${!v:-} ]] && eval "PID_$n=$(pgrep -P "${!v}" | head -n 1)" && PIDS+=("$(eval "echo \$PID_$n")")
done
for i in $INSTANCES; do
	mode=disable
	[[ $i == *_tls:* ]] && mode=require
	PGSSLMODE=$mode psql -X -At -h 127.0.0.1 -p "${i##*:}" -U u_trust reads -c 'select 1' >/dev/null || {
		say "pooler ${i%%:*} on ${i##*:} not answering"
		tail -n 5 "$WORK"/*.out "$WORK"/*.log >&2
		exit 1
	}
done

# target (+ tls) -> port and the processes whose CPU counts as "the pooler"
port_of() { # target tls
	local off=0
	[[ ${2:-} == yes ]] && off=3
	case $1 in pgusher) echo $((16610 + off)) ;; pgbouncer) echo $((16611 + off)) ;; pgbhap) echo $((16612 + off)) ;; direct) echo "$PORT" ;; esac
}
procs_of() { # target tls
	local sfx=""
	[[ ${2:-} == yes ]] && sfx=_tls
	case $1 in
	direct) echo "" ;;
	pgbhap) eval "echo \$PID_pgbhap$sfx \$PID_haproxy" ;;
	*) eval "echo \$PID_$1$sfx" ;;
	esac
}
host_of() { # direct: reads to a standby, writes to the primary
	if [[ $1 == direct ]]; then [[ $2 == reads ]] && echo "$S1" || echo "$P"; else echo 127.0.0.1; fi
}
dbname_of() { [[ $1 == direct ]] && echo testdb || echo "$2"; }
HZ=$(getconf CLK_TCK)

echo "workload,target,round,tps,lat_avg_ms,lat_p99_ms,cpu_us_per_xact,rss_kb,failed,sys_pct,cs_per_xact,status" >"$OUT/results.csv"

run_one() { # workload db clients tls args target round
	local name=$1 db=$2 clients=$3 tls=$4 args=$5 target=$6 round=$7
	[[ $target == direct && $clients -gt 250 ]] && return # the server's max_connections
	local procs c0 c1 out lat p99 tps failed rss dir rc status sslmode=disable perf_pid=""
	[[ $tls == yes ]] && sslmode=require
	procs=$(procs_of "$target" "$tls")
	dir=$WORK/log.$name.$target.$round
	mkdir -p "$dir"
	if ((PERF)) && [[ $target == pgusher || $target == pgbouncer ]]; then
		perf record -q -g -F 999 -p "$procs" -o "$dir/perf.data" -- sleep "$DUR" >/dev/null 2>&1 &
		perf_pid=$!
	fi
	c0=$(cpu_ticks "$procs") s0=$(sys_ticks "$procs") x0=$(ctx_switches "$procs")
	local envs=()
	while [[ $args == PG*=* ]]; do
		envs+=("${args%% *}")
		args=${args#* }
	done
	local driver=(pgbench -n $args -j 2 -l --sampling-rate=0.2)
	[[ $args == resume ]] && driver=(python3 "$ROOT/test/bench/tls_churn.py")
	out=$(cd "$dir" && env "${envs[@]}" PGSSLMODE=$sslmode timeout $((DUR + 60)) "${driver[@]}" -T "$DUR" -c "$clients" \
		-h "$(host_of "$target" "$db")" -p "$(port_of "$target" "$tls")" \
		-U u_trust "$(dbname_of "$target" "$db")" 2>&1)
	rc=$?
	c1=$(cpu_ticks "$procs") s1=$(sys_ticks "$procs") x1=$(ctx_switches "$procs")
	rss=$(rss_kb "$procs")
	if [[ -n $perf_pid ]]; then
		wait "$perf_pid"
		mv "$dir/perf.data" "$OUT/perf.$name.$target.$round.data"
		{
			perf report -i "$OUT/perf.$name.$target.$round.data" --no-children -g none --sort dso \
				--stdio 2>/dev/null
			perf report -i "$OUT/perf.$name.$target.$round.data" --no-children -g none \
				--sort dso,symbol --percent-limit 0.3 --stdio 2>/dev/null
		} | grep -v '^$' >"$OUT/perf.$name.$target.$round.txt"
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	# A row that failed is recorded as such (an aborted client, no result, a timeout); the
	# run goes on with the next row.
	status=ok
	local aborted
	aborted=$(grep -c 'aborted in command\|aborted while' <<<"$out")
	if ((rc != 0 || aborted > 0)) || [[ -z $tps ]]; then
		status="failed(rc=$rc,aborted_clients=$aborted)"
		say "$name $target round $round FAILED: $(grep -m 1 -i 'error' <<<"$out" | cut -c1-200)"
		echo "$out" >"$OUT/failed.$name.$target.$round.txt"
	fi
	p99=$(pgbench_p99 "$dir")
	local xacts cpu_per sys_pct="" cs_per=""
	xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	cpu_per=""
	[[ -n $procs && -n $xacts && $xacts -gt 0 ]] &&
		cpu_per=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v x="$xacts" 'BEGIN {printf "%.2f", t * 1e6 / hz / x}') &&
		cs_per=$(awk -v n=$((x1 - x0)) -v x="$xacts" 'BEGIN {printf "%.2f", n / x}')
	[[ -n $procs ]] && ((c1 > c0)) && sys_pct=$(awk -v s=$((s1 - s0)) -v t=$((c1 - c0)) 'BEGIN {printf "%.0f", 100 * s / t}')
	rm -rf "$dir"
	echo "$name,$target,$round,${tps:-0},${lat:-},${p99:-},${cpu_per:-},${rss:-},${failed:-?},$sys_pct,$cs_per,$status" >>"$OUT/results.csv"
	say "$name $target round $round: tps=${tps:-?} lat=${lat:-?}ms p99=${p99:-?}ms cpu/xact=${cpu_per:-n/a}us (${sys_pct:-?}% kernel, ${cs_per:-?} ctx switches/xact) failed=${failed:-?} $status"
}

for ((r = 1; r <= ROUNDS; r++)); do
	for w in "${WORKLOADS[@]}"; do
		read -r name db clients tls args <<<"$w"
		picked "$ONLY_W" "$name" || continue
		for t in "${TARGETS[@]}"; do
			picked "$ONLY_T" "$t" || continue
			run_one "$name" "$db" "$clients" "$tls" "$args" "$t" "$r"
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
		echo "idle_$IDLE,$t,1,,,,,$during,bytes_per_client=$per,,,ok" >>"$OUT/results.csv"
		say "idle $t: rss $before -> $during kB, $per bytes per idle client"
	done
fi

# ---------------------------------------------------------------- report (medians)
TLSKEY_NOTE="RSA 2048"
[[ $TLSKEY == ec ]] && TLSKEY_NOTE="ECDSA P-256"
python3 "$ROOT/test/bench/report.py" "$OUT" "$HOSTCPU_NOTE; $PGB_VERSION; TLS rows with an $TLSKEY_NOTE certificate"
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
	say "poolers still running: pgusher pid $PID_pgusher (port 16610), PgBouncer pid $PID_pgbouncer (16611)"
	((WANT_TLS)) && say "TLS instances: pgusher pid $PID_pgusher_tls (16613), PgBouncer pid $PID_pgbouncer_tls (16614)"
	say "Enter stops them"
	read -r _ || sleep 3600
fi
