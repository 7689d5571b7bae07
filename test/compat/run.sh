#!/usr/bin/env bash
# ctest entry for the differential harness: pgusher against the recorded PgBouncer 1.25.2
# output of every scenario (see compat.py). Needs the integration tests' cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! "$here/../integration/cluster.sh" status >/dev/null 2>&1; then
	"$here/../integration/cluster.sh" start
fi
exec python3 "$here/compat.py" "$@"
