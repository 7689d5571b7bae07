#!/usr/bin/env bash
# The one command that tests everything on a fresh Debian 12 machine (run as root, or as a
# user with sudo): installs what is missing, builds pgusher twice (normal in build/, with
# AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/) and runs ctest in each
# (unit tests, then the integration tests against a throw-away PostgreSQL cluster), then
# builds the libFuzzer harnesses with clang in build-fuzz/ and runs each one for a short
# bounded time (test/fuzz/run.sh; PGUSHER_FUZZ_SECONDS per target, default 20).
# Exits non-zero if anything fails; the last line is a summary.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JOBS=${PGUSHER_JOBS:-2}

PKGS=(build-essential cmake pkg-config libuv1-dev libssl-dev libc-ares-dev libsystemd-dev check
	systemd dpkg-dev logrotate # t_systemd (systemd-socket-activate), t_package (cpack shlibdeps)
	postgresql postgresql-contrib python3 pgbouncer procps iproute2 dnsmasq
	clang libclang-rt-14-dev python3-psycopg2 python3-psycopg
	libpostgresql-jdbc-java default-jdk-headless) # t_prepared's JDBC client
# t_prepared also runs node-postgres (npm install pg, cached under build/): Node.js from
# Debian unless some node and npm are there already.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

say() { echo "run-all: $*"; }

install_missing() {
	local p missing=()
	for p in "${PKGS[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	((${#missing[@]})) || {
		say "all packages present"
		return 0
	}
	say "installing: ${missing[*]}"
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null || {
			say "not root and no sudo: install ${missing[*]} by hand"
			return 1
		}
		sudo=(sudo)
	fi
	# Don't let the packages start their own services (Debian's pgbouncer would take
	# port 6432, PostgreSQL's main cluster 5432): policy-rc.d says no while we install.
	local policy=/usr/sbin/policy-rc.d made_policy=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null &&
			"${sudo[@]}" chmod 0755 "$policy" && made_policy=1
	fi
	local rc=0
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
	if ((rc == 0)); then
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${missing[@]}" </dev/null || rc=$?
	fi
	((made_policy)) && "${sudo[@]}" rm -f "$policy"
	return $rc
}

declare -a RESULTS=()
FAILED=0
step() { # name cmd...
	local name=$1
	shift
	say "==== $name"
	local t0=$SECONDS
	if "$@"; then
		RESULTS+=("$name: ok ($((SECONDS - t0))s)")
	else
		RESULTS+=("$name: FAILED ($((SECONDS - t0))s)")
		FAILED=1
		return 1
	fi
}

build() { # dir cmake-args...
	local dir=$1
	shift
	cmake -S "$ROOT" -B "$ROOT/$dir" "$@" && cmake --build "$ROOT/$dir" -j "$JOBS"
}

run_ctest() { # dir
	# -j2: the stories on the shared PostgreSQL cluster still run one at a time, and at most
	# one story with a cluster of its own beside them (RESOURCE_LOCKs in test/CMakeLists.txt).
	(cd "$ROOT/$1" && ctest --output-on-failure -j2)
}

summary() {
	say "==== summary"
	local r
	for r in "${RESULTS[@]}"; do say "  $r"; done
	if ((FAILED)); then
		say "SUMMARY: FAILED"
		exit 1
	fi
	say "SUMMARY: all passed"
	exit 0
}

step "install packages" install_missing || summary

if step "build (build/)" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
	step "ctest (build/)" run_ctest build
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if step "build with sanitizers (build-asan/)" build build-asan -DCMAKE_BUILD_TYPE=Debug -DPGUSHER_SANITIZE=ON; then
	step "ctest with sanitizers (build-asan/)" run_ctest build-asan
fi

# Every parser under libFuzzer (ASan+UBSan, leaks checked); any finding fails the run.
FUZZ_SECONDS=${PGUSHER_FUZZ_SECONDS:-20}
step "fuzz (build-fuzz/, ${FUZZ_SECONDS}s per target)" \
	bash "$ROOT/test/fuzz/run.sh" --seconds "$FUZZ_SECONDS"

summary
