#!/usr/bin/env bash
# Builds the libFuzzer harnesses in build-fuzz/ (clang, -DPGUSHER_FUZZ=ON) and runs each one
# for a bounded time on a copy of its seed corpus, one after the other. Exits non-zero on any
# finding (crash, sanitizer report, leak, timeout, out-of-memory) or build failure; prints the
# executions per target and ends with a summary line. Never writes into the source tree.
#
#   bash test/fuzz/run.sh                   # CI: 20 s per target
#   bash test/fuzz/run.sh --seconds 3600    # a long run: one hour per target
#   options: --seconds N, --only NAME[,NAME...] (e.g. --only ini,scram_client), --keep (start
#            from the corpus the previous run left in build-fuzz/fuzz-run/ instead of the seeds),
#            --no-build
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=$ROOT/test/fuzz
BUILD=${PGUSHER_FUZZ_BUILD:-$ROOT/build-fuzz}
RUN=$BUILD/fuzz-run
JOBS=${PGUSHER_JOBS:-2}
SECONDS_PER_TARGET=20
ONLY=""
KEEP=0
BUILD_IT=1

say() { echo "fuzz: $*"; }
usage() {
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

while (($#)); do
	case $1 in
	--seconds)
		[[ ${2:-} =~ ^[0-9]+$ ]] && (($2 > 0)) || usage
		SECONDS_PER_TARGET=$2
		shift 2
		;;
	--only)
		[[ -n ${2:-} ]] || usage
		ONLY=$2
		shift 2
		;;
	--keep)
		KEEP=1
		shift
		;;
	--no-build)
		BUILD_IT=0
		shift
		;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done

if ((BUILD_IT)); then
	command -v clang >/dev/null || {
		say "clang not found (apt-get install clang libclang-rt-14-dev)"
		exit 2
	}
	say "building harnesses in $BUILD"
	mkdir -p "$BUILD"
	if ! CC=clang cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DPGUSHER_FUZZ=ON >"$BUILD/cmake.log" 2>&1; then
		cat "$BUILD/cmake.log"
		say "SUMMARY: FAILED (cmake)"
		exit 2
	fi
	if ! cmake --build "$BUILD" -j "$JOBS" --target fuzzers; then
		say "SUMMARY: FAILED (build)"
		exit 2
	fi
fi

targets=()
for src in "$SRC"/fuzz_*.c; do
	name=$(basename "$src" .c)
	name=${name#fuzz_}
	if [[ -n $ONLY && ",$ONLY," != *",$name,"* ]]; then
		continue
	fi
	targets+=("$name")
done
((${#targets[@]})) || {
	say "no target matches --only $ONLY"
	exit 2
}

# The sanitizers stop at the first report; libFuzzer turns it into a crash artifact.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$RUN/tmp"
export TMPDIR=$RUN/tmp # the harnesses' private directories

declare -a RESULTS=()
FAILED=()
TOTAL_RUNS=0
for name in "${targets[@]}"; do
	bin=$BUILD/test/fuzz/fuzz_$name
	dir=$RUN/$name
	if [[ ! -x $bin ]]; then
		RESULTS+=("$name: FAILED (no binary $bin)")
		FAILED+=("$name")
		continue
	fi
	mkdir -p "$dir"
	rm -rf "$dir"/artifacts
	mkdir -p "$dir/artifacts"
	if ((!KEEP)) || [[ ! -d $dir/corpus ]]; then
		rm -rf "$dir/corpus"
		mkdir -p "$dir/corpus"
		cp "$SRC/corpus/$name"/* "$dir/corpus/" 2>/dev/null
	fi
	args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=1024
		-print_final_stats=1 -artifact_prefix="$dir/artifacts/")
	[[ -f $SRC/$name.dict ]] && args+=(-dict="$SRC/$name.dict")
	say "==== $name (${SECONDS_PER_TARGET}s)"
	t0=$SECONDS
	"$bin" "${args[@]}" "$dir/corpus" >"$dir/log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$dir/log" | tail -1)
	[[ -n $runs ]] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$dir/log" | tail -1)
	runs=${runs:-0}
	TOTAL_RUNS=$((TOTAL_RUNS + runs))
	ncorpus=$(find "$dir/corpus" -type f | wc -l)
	artifacts=$(find "$dir/artifacts" -type f | head -5)
	if ((rc == 0)) && [[ -z $artifacts ]]; then
		RESULTS+=("$name: ok, $runs runs in $((SECONDS - t0))s, corpus $ncorpus")
	else
		RESULTS+=("$name: FAILED (exit $rc) after $runs runs")
		FAILED+=("$name")
		# The report: libFuzzer's and the sanitizer's lines, then how to reproduce.
		grep -E '^(==[0-9]+==|SUMMARY|    #[0-9]|.*invariant broken|.*runtime error|.*refused|.*shows)' \
			"$dir/log" | grep -vE 'in fuzzer::|libc_start|in main ' | head -60
		for a in $artifacts; do
			say "input: $a"
			say "reproduce: $bin $a"
		done
		say "full log: $dir/log"
	fi
	say "$name: $runs runs"
done

say "==== results"
for r in "${RESULTS[@]}"; do say "  $r"; done
if ((${#FAILED[@]})); then
	say "SUMMARY: FAILED: ${FAILED[*]} (${#targets[@]} targets, $TOTAL_RUNS runs)"
	exit 1
fi
say "SUMMARY: all ${#targets[@]} targets passed ($TOTAL_RUNS runs, ${SECONDS_PER_TARGET}s each)"
exit 0
