#!/bin/bash
# Prepares what the VM test host (tests/SolarCsi.Tests/Vm) boots: a Debian 6.1 kernel, its modules with a
# modules.dep, and a ~1.5 MB initramfs. Debian packages only; idempotent: a second run with nothing changed
# takes well under a second.
#   SOLAR_VM_ASSETS  cache folder (default /var/cache/solar-vm); the tests read the same variable
#   SOLAR_VM_KVER    pin a kernel (e.g. 6.1.0-57-amd64); default: the one already cached, else the newest apt offers
#   --no-install     do not apt-get install the host tools (qemu, busybox-static, kmod, socat)
# Why Debian's 6.1 kernel: it has nbd, device-mapper thin, and NVDIMM modules, which the CI/dev kernel lacks.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SOLAR_VM_ASSETS:-/var/cache/solar-vm}
INSTALL=1; [ "${1:-}" = --no-install ] && INSTALL=0

# 1. host tools (check first: apt-get is slow even when there is nothing to do)
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list | grep -qx switch_root || need+=(busybox-static)
command -v depmod >/dev/null || need+=(kmod)
command -v socat >/dev/null || need+=(socat)
if [ ${#need[@]} -gt 0 ]; then
  [ $INSTALL = 1 ] || { echo "missing packages: ${need[*]}" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
# busybox must be static: it runs in the initramfs before any library is there.
if ldd /bin/busybox >/dev/null 2>&1; then echo "/bin/busybox is not static (install busybox-static)" >&2; exit 1; fi

mkdir -p "$CACHE"
# 2. the kernel package, downloaded and unpacked once
KVER=${SOLAR_VM_KVER:-$(cat "$CACHE/kver" 2>/dev/null || true)}
if [ -z "$KVER" ]; then
  pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | cut -d' ' -f1 | sort -V | tail -1)
  [ -n "$pkg" ] || { echo "apt offers no linux-image-6.1.0-*-amd64 (apt-get update?)" >&2; exit 1; }
  KVER=${pkg#linux-image-}
fi
KERN=$CACHE/kernel-$KVER
if [ ! -f "$KERN/boot/vmlinuz-$KVER" ]; then
  tmp=$(mktemp -d "$CACHE/dl.XXXXXX"); chmod 755 "$tmp"; trap 'rm -rf "$tmp"' EXIT
  # A stale index names a package version the mirror no longer has: refresh once and retry.
  (cd "$tmp" && { apt-get download "linux-image-$KVER" || { apt-get update -qq && apt-get download "linux-image-$KVER"; }; })
  dpkg-deb -x "$tmp"/linux-image-"$KVER"_*.deb "$tmp/x"
  rm -rf "$KERN"; mv "$tmp/x" "$KERN"
fi

# 3. modules.dep: Debian's unpacked tree has none; depmod into a hard-linked copy so the unpacked tree stays pristine
MODROOT=$CACHE/modroot-$KVER
if [ ! -f "$MODROOT/lib/modules/$KVER/modules.dep" ]; then
  rm -rf "$MODROOT"; mkdir -p "$MODROOT/lib/modules"
  cp -al "$KERN/lib/modules/$KVER" "$MODROOT/lib/modules/"
  depmod -b "$MODROOT" "$KVER"
fi

# 4. the initramfs, rebuilt only when its inputs change
stamp=$(cat "$HERE/initramfs-init" "$HERE/build-initramfs.sh" /bin/busybox | sha256sum | cut -c1-16)-$KVER
if [ "$(cat "$CACHE/initramfs.stamp" 2>/dev/null || true)" != "$stamp" ] || [ ! -f "$CACHE/initramfs.cpio.gz" ]; then
  "$HERE/build-initramfs.sh" "$MODROOT/lib/modules/$KVER" "$HERE/initramfs-init" "$CACHE/initramfs.cpio.gz"
  echo "$stamp" > "$CACHE/initramfs.stamp"
fi

# 5. stable names for the test host
ln -sfn "kernel-$KVER/boot/vmlinuz-$KVER" "$CACHE/vmlinuz"
ln -sfn "modroot-$KVER/lib/modules" "$CACHE/modules"
echo "$KVER" > "$CACHE/kver"
echo "VM assets ready in $CACHE (kernel $KVER, initramfs $(stat -c %s "$CACHE/initramfs.cpio.gz") bytes)"
