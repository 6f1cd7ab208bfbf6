#!/usr/bin/env bash
# Install the Debian packages the test suite and tools use, when missing (one apt-get run).
# Usage: scripts/ensure-packages.sh [PACKAGE...]   (default: everything npm test needs)
set -euo pipefail
want=("$@")
if [ ${#want[@]} -eq 0 ]; then
  want=(fuse3 attr util-linux curl memcached swift swift-proxy swift-object swift-container swift-account python3-swiftclient samba samba-vfs-modules smbclient python3-smbc chromium)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root: apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
inst() { apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends --no-upgrade "${missing[@]}"; }
log=$(mktemp)
if ! inst >"$log" 2>&1; then
  apt-get update -q >>"$log" 2>&1 || true
  inst >>"$log" 2>&1 || { tail -30 "$log" >&2; echo "apt-get install failed" >&2; exit 1; }
fi
rm -f "$log"
