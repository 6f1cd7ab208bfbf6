#!/usr/bin/env bash
# A large file through `silt smb` with the real smbd and smbclient: put, get, cmp, MB/s; then the
# same transfers through an smbd share of a plain local directory on the same disk, in the same
# run, for comparison. npm test moves 1 GiB too; this runs it alone, on any store (docs/SMB.md).
#
# Usage (root): scripts/smb-large-file.sh [SIZE_MIB] [STORE_URL]
#   SIZE_MIB   default 1024
#   STORE_URL  default file:<temp dir>/store (a Swift or S3 URL works, with its credentials in env)
# Environment: SILT_SMB_KEEP=1 keeps the temp directory. Prints one summary table at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
size_mib=${1:-1024}
[ "$(id -u)" = 0 ] || { echo "run as root (smbd, useradd, FUSE mounts)" >&2; exit 2; }
bash scripts/ensure-packages.sh samba samba-vfs-modules smbclient

work=$(mktemp -d /tmp/silt-smb-large-XXXXXX)
chmod 755 "$work"
store=${2:-file:$work/store}
user="silt_big_$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
pass='big-Secret1'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
silt_pid=
plain_pid=

cleanup() {
  set +e
  [ -n "$plain_pid" ] && kill -TERM -- "-$plain_pid" 2>/dev/null && wait "$plain_pid" 2>/dev/null
  [ -n "$silt_pid" ] && kill -TERM "$silt_pid" 2>/dev/null && wait "$silt_pid" 2>/dev/null
  getent passwd "$user" >/dev/null && userdel "$user"
  if [ "${SILT_SMB_KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
mbps() { python3 -c "import sys; b=$size_mib*1048576; t=float(sys.argv[1]); print(f'{t:.1f} s, {b/1e6/t:.0f} MB/s')" "$1"; }
transfer() { # share port -> sets put_s get_s
  local share=$1 p=$2 t0 t1
  rm -f "$work/big.back"
  t0=$(now)
  smbclient "//127.0.0.1/$share" -p "$p" -U "$user%$pass" -c "lcd $work; put big" >"$work/put.log" 2>&1 || { cat "$work/put.log" >&2; exit 1; }
  t1=$(now); put_s=$(python3 -c "print($t1-$t0)")
  t0=$(now)
  smbclient "//127.0.0.1/$share" -p "$p" -U "$user%$pass" -c "lcd $work; get big big.back" >"$work/get.log" 2>&1 || { cat "$work/get.log" >&2; exit 1; }
  t1=$(now); get_s=$(python3 -c "print($t1-$t0)")
  ! grep -q NT_STATUS_ "$work/put.log" "$work/get.log" || { cat "$work/put.log" "$work/get.log" >&2; exit 1; }
  cmp "$work/big" "$work/big.back"
}

echo "writing a $size_mib MiB test file" >&2
head -c $((size_mib * 1048576)) /dev/urandom >"$work/big"

# 1. Through silt smb (sync-on-close mount of the volume).
node bin/silt.mjs smb --store "$store" --mkfs --share big --port "$port" --listen 127.0.0.1 \
  --user "$user:$pass" --state "$work/state" >"$work/silt-smb.log" 2>&1 &
silt_pid=$!
for _ in $(seq 600); do grep -q ' is ready ' "$work/silt-smb.log" && break; kill -0 "$silt_pid" 2>/dev/null || break; sleep 0.2; done
grep -q ' is ready ' "$work/silt-smb.log" || { cat "$work/silt-smb.log" >&2; echo "silt smb did not start" >&2; exit 1; }
transfer big "$port"
silt_put=$put_s silt_get=$get_s
cmp "$work/big" "$work/state/mnt/big"
kill -TERM "$silt_pid"; wait "$silt_pid" || { cat "$work/silt-smb.log" >&2; exit 1; }
silt_pid=
node bin/silt.mjs fsck --store "$store" --no-data >&2

# 2. The same smbd configuration over a plain directory on the same disk.
mkdir -p "$work/plain" "$work/pstate"
chown "$user" "$work/plain"
pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
node --import tsx -e "
import('$repo/src/smb/config.ts').then((m) => {
  const layout = m.stateLayout('$work/pstate');
  process.stdout.write(m.renderSmbConf({ layout, share: 'plain', path: '$work/plain', port: $pport, listen: '127.0.0.1',
    users: ['$user'], readOnlyUsers: [], vfsObjects: ['streams_xattr', 'acl_xattr'] }));
});" >"$work/pstate.conf"
mkdir -p "$work/pstate"/{private,lock,state,cache,pid,ncalrpc,binddns,log}
printf '%s\n%s\n' "$pass" "$pass" | smbpasswd -c "$work/pstate.conf" -s -a "$user" >/dev/null
setsid smbd --foreground --no-process-group --debug-stdout -s "$work/pstate.conf" </dev/null >"$work/plain-smbd.log" 2>&1 &
plain_pid=$!
for _ in $(seq 150); do smbclient "//127.0.0.1/plain" -p "$pport" -U "$user%$pass" -c ls >/dev/null 2>&1 && break; sleep 0.2; done
transfer plain "$pport"
plain_put=$put_s plain_get=$get_s

printf '\n%s MiB through smbclient (load average %s)\n' "$size_mib" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-34s put %-22s get %s\n' "silt smb ($store)" "$(mbps "$silt_put")" "$(mbps "$silt_get")"
printf '  %-34s put %-22s get %s\n' "plain directory share" "$(mbps "$plain_put")" "$(mbps "$plain_get")"
python3 -c "print(f'  silt / plain: put {$plain_put/$silt_put:.2f}x, get {$plain_get/$silt_get:.2f}x')"
