#!/usr/bin/env bash
# The whole test suite: `npm test` runs this, and so does .ci/run.
# Discovers every test/**/*.test.ts, starts the real services the e2e tests need, and runs them all
# with node's test runner. A service that cannot start fails the run loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
export SILT_VERIFY=1
[ -d node_modules ] || npm ci
# Debian packages the real-service tests need (FUSE tools, xattr tools, Swift); installs only what is missing.
bash scripts/ensure-packages.sh

mapfile -t files < <(find test -name '*.test.ts' | sort)
[ ${#files[@]} -gt 0 ] || { echo "no test files found" >&2; exit 1; }
echo "running ${#files[@]} test files"
exec node --import tsx --test --test-reporter=spec "${files[@]}"
