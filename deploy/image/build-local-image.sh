#!/usr/bin/env bash
# Builds a runnable SolarCsi image on this machine without any registry: the NativeAOT binaries (both plugins and the
# operator CLI) plus the host tools they call, each with the shared libraries ldd lists, imported with `docker import`.
# The NativeAOT link needs clang (scripts/install-prereqs.sh installs it).
# Usage: deploy/image/build-local-image.sh [tag] [docker args...]   (default tag solar-csi:local)
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-solar-csi:local}
shift || true
docker=(docker "$@")
work=$(mktemp -d /tmp/solar-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{solar,tmp,var/lib/solar-csi,run,proc,sys,dev,etc}
chmod 1777 "$root/tmp"

# Publish from a copy of the sources, so this never races a build of the checkout (the test suite runs this
# while other test projects are still building).
tree="$work/tree"
mkdir -p "$tree"
cp -r Directory.Build.props Directory.Packages.props proto native "$tree/"
mkdir -p "$tree/src"
for p in Core Node Controller Local Cli; do
  mkdir -p "$tree/src/$p"
  tar -C "src/$p" --exclude=./bin --exclude=./obj -c . | tar -C "$tree/src/$p" -x
done
# Each project is NativeAOT when published (PublishAot in its .csproj): one native executable, no .NET runtime in the
# image. Each is published on its own and only the executable is copied: a publish also leaves symbol files and the
# runtimeconfig of referenced projects behind. The operator CLI (solar node-state, cleanup, call) travels with the
# plugins, for kubectl exec on a stuck node.
# SOLAR_IMAGE_PROJECTS narrows the build to some of them (the storage-host tests run only the node plugin, and each
# NativeAOT link costs a minute or more on a small machine).
projects=" ${SOLAR_IMAGE_PROJECTS:-Node Controller Cli} "
for p in Node:solar-node Controller:solar-controller Cli:solar; do
  case "$projects" in *" ${p%%:*} "*) ;; *) continue ;; esac
  dotnet publish "$tree/src/${p%%:*}" -c Release -r linux-x64 -o "$work/publish/${p%%:*}" -p:DebugType=none >/dev/null
  cp "$work/publish/${p%%:*}/${p#*:}" "$root/solar/"
done
# The node's nbdkit filters (built with it against this machine's nbdkit; solar-node looks beside itself).
for filter in nbdkit-solar-iops-filter.so nbdkit-solar-peers-filter.so; do
  if [ -f "$work/publish/Node/$filter" ]; then cp "$work/publish/Node/$filter" "$root/solar/"; fi
done

# Host tools the plugins run (docs/deploy.md "Host tools"): storage agent, NBD, filesystems, mounts, and the local
# media: whole disks (wipefs, blkdiscard), LVM (the lv*/vg* commands are symlinks to the one `lvm` binary, copied
# as such) and pmem (ndctl). deploy/image/Dockerfile installs the same set from Debian packages.
tools=(sh env setsid cp tar losetup blkid mount umount mkfs.ext4 mkfs.xfs resize2fs e2fsck dumpe2fs xfs_growfs fsfreeze
       nbdkit nbdfuse nbdinfo fusermount3 nbd-client
       wipefs blkdiscard
       lvm lvcreate lvremove lvextend lvchange lvs vgs
       ndctl)
copy_with_libs() {
  local file=$1
  mkdir -p "$root$(dirname "$file")"
  cp -L "$file" "$root$file"
  ldd "$file" 2>/dev/null | awk '/=> \//{print $3} /^\s*\/lib/{print $1}' | while read -r lib; do
    [ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
  done
}
# Only tools this machine has: a missing one is named and skipped (the image then lacks that media or path,
# e.g. no lvm2 installed -> no LVM pools), rather than failing the whole build.
missing=()
for t in "${tools[@]}"; do
  path=$(command -v "$t" || true)
  if [ -z "$path" ]; then missing+=("$t"); continue; fi
  real=$(readlink -f "$path")
  copy_with_libs "$real"
  if [ "$real" != "$path" ]; then mkdir -p "$root$(dirname "$path")"; ln -sf "$real" "$root$path"; fi
done
[ ${#missing[@]} -eq 0 ] || echo "build-local-image: not on this machine, left out of the image: ${missing[*]}" >&2
# LVM reads /etc/lvm/lvm.conf; take the machine's if it has one (built-in defaults apply otherwise). Only the
# configuration: /etc/lvm/archive and backup hold this machine's volume group metadata.
if [ -x "$root/usr/sbin/lvm" ] && [ -f /etc/lvm/lvm.conf ]; then mkdir -p "$root/etc/lvm"; cp /etc/lvm/lvm.conf "$root/etc/lvm/"; fi
for so in /usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-{file,nbd,memory}-plugin.so /usr/lib/x86_64-linux-gnu/nbdkit/filters/*.so; do
  [ -e "$so" ] && copy_with_libs "$so"
done
copy_with_libs /lib64/ld-linux-x86-64.so.2
# .NET loads OpenSSL at run time (hashing, TLS) by name, so ldd cannot see it.
for lib in /usr/lib/x86_64-linux-gnu/libssl.so.3 /usr/lib/x86_64-linux-gnu/libcrypto.so.3; do copy_with_libs "$lib"; done
for exe in "$root"/solar/*; do
  ldd "$exe" | awk '/=> \//{print $3}' | while read -r lib; do
    [ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
  done
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
[ -e "$root/bin" ] || ln -s usr/bin "$root/bin"
[ -e "$root/sbin" ] || ln -s usr/sbin "$root/sbin"

tar -C "$root" -c . | "${docker[@]}" import \
  -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENTRYPOINT ["/solar/solar-node"]' - "$tag" >/dev/null
echo "$tag"
