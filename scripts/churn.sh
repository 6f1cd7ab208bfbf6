#!/usr/bin/env bash
# The issue's full churn test: 1 GiB of rewrites over a 100 MiB working set through the fs layer
# (MemoryStore), a rate-limited cleaner pass and gc between 32 MiB cycles, then one full pass
# (as `silt gc --utilization 0.8`). Asserts stored <= 1.2x live, every file intact, fsck clean,
# and prints a CHURN line with the figures. `npm test` runs the same test at 256 MiB.
#   scripts/churn.sh [CHURN_MIB] [WORKING_SET_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
export SILT_CHURN_MIB="${1:-1024}" SILT_CHURN_WORKING_MIB="${2:-100}"
exec node --max-old-space-size=4096 --import tsx --test test/integration/gc-churn.test.ts
