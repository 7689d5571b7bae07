# Shared helpers of the benchmarks (sourced by bench.sh and scale.sh; not run alone): installing
# what they need, building pgusher (Release, build-bench/), finding PgBouncer 1.25.2, starting
# poolers (PgBouncer as user postgres) and reading a process's CPU, RSS and context switches.
# Owns no cluster and no ports: each script picks its own.

# bench_install pkg...: apt-get install the Debian packages that are missing (no service starts).
bench_install() {
	local need=() p
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
	done
	((${#need[@]})) || return 0
	echo "bench: installing ${need[*]}" >&2
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
	DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null
	local rc=$?
	rm -f /usr/sbin/policy-rc.d
	return $rc
}

# bench_build ROOT: pgusher (Release) in ROOT/build-bench.
bench_build() {
	cmake -S "$1" -B "$1/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
		cmake --build "$1/build-bench" -j2 --target pgusher >/dev/null
}

# bench_find_pgbouncer ROOT: sets PGBOUNCER and PGB_VERSION (PGUSHER_BENCH_PGBOUNCER overrides).
bench_find_pgbouncer() {
	PGBOUNCER=${PGUSHER_BENCH_PGBOUNCER:-$(cd "$1/.." && pwd)/shared/ref/pgbouncer-1.25.2/pgbouncer}
	[[ -x $PGBOUNCER ]] || PGBOUNCER=/work/shared/ref/pgbouncer-1.25.2/pgbouncer
	[[ -x $PGBOUNCER ]] || return 1
	PGB_VERSION=$("$PGBOUNCER" --version 2>/dev/null | head -n 1)
}

# start NAME CMD...: run in the background, output in $WORK/NAME.out; PID_NAME and PIDS get it.
start() {
	local name=$1
	shift
	"$@" >"$WORK/$name.out" 2>&1 &
	PIDS+=($!)
	eval "PID_$name=$!"
}
# start_as_pg NAME CMD...: the same as user postgres (PgBouncer refuses to run as root), with
# this shell's fd limit; runuser forks, so PID_NAME is runuser: bench_pg_child finds the child.
start_as_pg() {
	local name=$1
	shift
	runuser -u postgres -- bash -c "ulimit -n $(ulimit -n); exec $*" >"$WORK/$name.out" 2>&1 &
	PIDS+=($!)
	eval "PID_$name=$!"
}
bench_pg_child() { # NAME: replace PID_NAME (runuser) by its child, once it exists
	local v=PID_$1 c i
	for ((i = 0; i < 50; i++)); do
		c=$(pgrep -P "${!v}" | head -n 1)
		[[ -n $c ]] && break
		sleep 0.1
	done
	[[ -n $c ]] || return 1
	eval "PID_$1=$c"
	PIDS+=("$c")
}

# Per-process counters (PIDS as one word list): CPU ticks (user+sys), kernel ticks, context
# switches, RSS kB, and CPU nanoseconds (schedstat, every thread: finer than ticks).
cpu_ticks() { local t=0 p; for p in $1; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
sys_ticks() { local t=0 p; for p in $1; do t=$((t + $(awk '{print $15}' "/proc/$p/stat"))); done; echo $t; }
ctx_switches() { # voluntary + involuntary context switches of the processes
	local t=0 p
	for p in $1; do t=$((t + $(awk '/ctxt_switches/{n += $2} END {print n}' "/proc/$p/status"))); done
	echo $t
}
rss_kb() { local t=0 p; for p in $1; do t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status"))); done; echo $t; }
cpu_ns() { local p; for p in $1; do cat "/proc/$p/task/"*/schedstat; done 2>/dev/null | awk '{n += $1} END {printf "%.0f", n}'; }

# pgbench_p99 DIR: p99 latency (ms) from the pgbench -l logs in DIR.
pgbench_p99() {
	cat "$1"/pgbench_log.* 2>/dev/null | awk '{print $3}' | sort -n |
		awk '{a[NR]=$1} END {if (NR) printf "%.3f", a[int(NR*0.99)]/1000; else print ""}'
}
