#!/usr/bin/env bash
# Installs the host tools SolarCsi calls and its tests exercise (Debian 12, as root). docker.io is for the tests
# that run a storage host in a container; the suite starts its own private engine (no registry, no bridge).
set -euo pipefail
# lvm2, thin-provisioning-tools and ndctl serve the LVM and pmem pools (their integration tests skip without
# device-mapper or pmem hardware, but the tools must be there to tell). kubectl renders deploy/ (`kubectl
# kustomize`) for the manifest tests in tests/SolarCsi.Tests/Deploy. clang links the NativeAOT binaries that
# deploy/image/build-local-image.sh publishes (zlib1g-dev is on Microsoft's list of NativeAOT prerequisites).
# nbdkit-plugin-dev, gcc and make build the request-rate filter (native/nbdkit-iops-filter) with the node plugin.
# With --runtime: only what the plugins run and the request-rate filter's build needs (README command 1, the demo).
runtime=(e2fsprogs xfsprogs util-linux mount coreutils tar nbdkit libnbd-bin fuse3 nbd-client lvm2 thin-provisioning-tools ndctl
         nbdkit-plugin-dev gcc make libc6-dev)
packages=("${runtime[@]}")
if [ "${1:-}" != --runtime ]; then packages+=(docker.io kubectl clang zlib1g-dev); fi
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  # Debian's own archive packages kubectl as kubernetes-client; `kubectl` comes from the Kubernetes apt repository
  # where that is configured. Take whichever this machine's sources offer.
  for i in "${!missing[@]}"; do
    if [ "${missing[$i]}" = kubectl ] && ! apt-cache policy kubectl 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      missing[$i]=kubernetes-client
    fi
  done
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v dotnet >/dev/null || { echo "install the .NET 10 SDK first" >&2; exit 1; }
# Loop devices are created on demand by losetup; make sure the control node exists.
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null || true
# The VM test host (tests/SolarCsi.Tests/Vm): qemu, a Debian 6.1 kernel and an initramfs, for the nbd, device-mapper,
# pmem and ext4-online-resize tests this kernel cannot run. Skipped with --runtime; SOLAR_VM_ASSETS=... moves the cache.
if [ "${1:-}" != --runtime ]; then "$(dirname "$0")/../tests/vm/prepare-assets.sh"; fi
