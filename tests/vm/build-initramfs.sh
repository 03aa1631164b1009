#!/bin/bash
# Usage: build-initramfs.sh MODULE_DIR INIT OUT
# A tiny initramfs: static busybox, INIT as /init, and just the modules that mount the host root over virtio-9p with
# a tmpfs overlay (in modules.dep order). Everything else (nbd, dm-*, nvdimm, loop...) is modprobe'd later from the
# modules share, so this stays small and rarely changes.
set -euo pipefail
MD=$1; INIT=$2; OUT=$3
declare -A seen; order=()
resolve() {  # $1 = module path relative to $MD; dependencies first
  local m=$1; [ -n "${seen[$m]:-}" ] && return; seen[$m]=1
  local d; for d in $(grep -E "^${m}:" "$MD/modules.dep" | cut -d: -f2); do resolve "$d"; done
  order+=("$m")
}
for name in virtio_pci 9pnet_virtio 9p overlay; do
  p=$(grep -E "/${name}\.ko(\.[a-z]+)?:" "$MD/modules.dep" | cut -d: -f1)
  [ -n "$p" ] || { echo "module $name not found in $MD" >&2; exit 1; }
  resolve "$p"
done
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,mods,lower,ov,newroot}
cp /bin/busybox "$stage/bin/busybox"
for m in "${order[@]}"; do cp "$MD/$m" "$stage/mods/"; basename "$m" >> "$stage/mods/order"; done
cp "$INIT" "$stage/init"; chmod +x "$stage/init"
(cd "$stage" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "initramfs: $(tr '\n' ' ' < "$stage/mods/order")"
