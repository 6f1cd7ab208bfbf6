#!/usr/bin/env bash
# The long crash campaign for release checks (docs/RELIABILITY.md): the same harness as
# test/reliability/crash-mount.test.ts, with more crash points and more time.
#
#   scripts/crash-campaign.sh                       # 2,000 crash points or 10 minutes, whichever first
#   SILT_CRASH_POINTS=5000 SILT_CRASH_SECONDS=1800 scripts/crash-campaign.sh
#   SILT_SEED=1234 scripts/crash-campaign.sh        # replay a seed (operations and kill points)
#   SILT_CRASH_LANES=4                              # volumes crashed side by side (default 3)
#
# Needs root and /dev/fuse. Prints the seed first and a JSON report at the end; exits non-zero on
# the first crash whose recovered volume breaks the durability contract or fails fsck.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
export SILT_VERIFY=1
export SILT_CRASH_POINTS="${SILT_CRASH_POINTS:-2000}"
export SILT_CRASH_SECONDS="${SILT_CRASH_SECONDS:-600}"
export SILT_CRASH_LANES="${SILT_CRASH_LANES:-3}"
if [ -z "${SILT_SEED:-}" ]; then SILT_SEED=$(( (RANDOM << 15) | RANDOM )); fi
export SILT_SEED
echo "crash campaign: seed $SILT_SEED, up to $SILT_CRASH_POINTS crash points in $SILT_CRASH_SECONDS s, $SILT_CRASH_LANES lanes"
exec node --import tsx --test --test-reporter=spec test/reliability/crash-mount.test.ts
