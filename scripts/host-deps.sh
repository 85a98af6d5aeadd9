#!/usr/bin/env bash
# Installs the Debian packages the test suite needs on the host, if missing (idempotent):
#   fuse3          fusermount3, through which a user without root mounts (spec/fuse/mount.spec.ts).
#   gcc, linux-libc-dev  the ABI check compiles <linux/fuse.h> against src/fuse/abi.ts (spec/fuse/abi.spec.ts).
#   iproute2       ip netns exec / ip -n on a namespace `handlefs bind` pinned (spec/cli/act.spec.ts).
#   util-linux     nsenter (what `handlefs exec` runs), unshare and setpriv (spec/cli/act.spec.ts).
# libfuse3-dev for the benchmarks is installed by the benchmarks themselves.
set -euo pipefail
missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -f /usr/include/linux/fuse.h ] || missing+=(linux-libc-dev)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "host-deps: please install ${missing[*]} (Debian/Ubuntu: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "host-deps: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
