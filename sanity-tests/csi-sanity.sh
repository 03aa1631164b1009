#!/usr/bin/env bash
# Runs the upstream conformance suite, csi-sanity (kubernetes-csi/csi-test), against SolarCsi the way its reference
# driver is tested: one CSI endpoint serving Identity, Controller, GroupController and Node — `solar-node --mode
# all-in-one`, the single-node install — so the node lifecycle and group-snapshot specs run with a real
# ControllerPublish before every NodeStage.
#
# One pass per media that runs on this machine, each on a fresh state directory:
#   file   local sparse images on loop devices (the default media)
#   nbd    remote block over NBD (nbdkit on 127.0.0.1, TLS-PSK), with mutable parameters (bandwidthLimit, iopsLimit),
#          so the ModifyVolume specs change live limits; the attach-limit spec publishes 128 exports to one node
#   tmpfs  memory-backed volumes from a --pools-config tmpfs pool
# Every pass must end with 0 failed and 0 skipped (skips are allowed only when extra flags such as -ginkgo.focus
# were given); the one pending spec is marked pending by csi-test itself.
#
# Usage: sanity-tests/csi-sanity.sh [csi-sanity flags, e.g. -ginkgo.focus=Node]
# csi-sanity is taken from $CSI_SANITY, else PATH, else ../shared/tools/csi-sanity beside the project (or beside the
# local checkout this one was cloned from).
# Exits non-zero when csi-sanity cannot be found, the plugin does not start, or any pass fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

sanity=${CSI_SANITY:-$(command -v csi-sanity || true)}
[ -n "$sanity" ] || sanity="$root/../shared/tools/csi-sanity"
# A scratch clone (git clone . /tmp/x) has no ../shared beside it: look beside the checkout it was cloned from.
if [ ! -x "$sanity" ] && origin=$(git -C "$root" remote get-url origin 2>/dev/null) && [ -d "$origin" ]; then
  sanity="$origin/../shared/tools/csi-sanity"
fi
if [ ! -x "$sanity" ]; then
  echo "csi-sanity not found: set CSI_SANITY, put it on PATH, or place it at ../shared/tools/csi-sanity" >&2
  echo "(build it from kubernetes-csi/csi-test, cmd/csi-sanity)" >&2
  exit 1
fi

# The CLI references the node plugin, so one build makes both.
if ! build_log=$(dotnet build -c Release src/Cli -nologo 2>&1); then echo "$build_log" >&2; exit 1; fi
node_bin="$root/src/Node/bin/Release/net10.0/solar-node"
solar_bin="$root/src/Cli/bin/Release/net10.0/solar"

work=$(mktemp -d /tmp/solar-csi-sanity.XXXXXX)
plugin=0
stop_plugin() {
  if [ "$plugin" != 0 ]; then kill -TERM "$plugin" 2>/dev/null || true; wait "$plugin" 2>/dev/null || true; plugin=0; fi
}
cleanup() {
  # Keep the script's own verdict; clean-up steps that find nothing to do must not change it.
  local rc=$?
  set +e +o pipefail
  stop_plugin
  # Whatever a failed spec left mounted under the work directory, deepest first; then its loop devices.
  grep -o " $work/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  losetup -nO NAME,BACK-FILE 2>/dev/null | awk -v w="$work/" 'index($2, w) == 1 { print $1 }' | while read -r l; do losetup -d "$l" || true; done
  pkill -KILL -f "nbd(kit|fuse) .*$work/" 2>/dev/null || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

extra_flags=$#

# pass NAME [node flags...] -- [csi-sanity flags...]
failed_passes=()
pass() {
  local name=$1; shift
  local node_flags=()
  while [ "$1" != -- ]; do node_flags+=("$1"); shift; done
  shift
  local dir="$work/$name"
  mkdir -p "$dir/kubelet/csi-sanity"
  "$node_bin" --mode all-in-one --endpoint "unix://$dir/csi.sock" --node-id sanity-node --state-dir "$dir/state" \
    --allowed-root "$dir/kubelet" --file-pool-capacity 64Gi --reconcile-seconds 5 "${node_flags[@]}" >"$dir/plugin.log" 2>&1 &
  plugin=$!
  local ready=""
  for _ in $(seq 1 120); do
    kill -0 "$plugin" 2>/dev/null || break
    if [ -S "$dir/csi.sock" ] && "$solar_bin" call --endpoint "unix://$dir/csi.sock" --timeout-seconds 2 Probe 2>/dev/null | grep -q '"ready": true'; then
      ready=yes; break
    fi
    sleep 0.5
  done
  if [ -z "$ready" ]; then
    echo "$name: the all-in-one plugin did not become ready:" >&2; tail -20 "$dir/plugin.log" >&2
    stop_plugin; failed_passes+=("$name"); return
  fi
  local rc=0
  "$sanity" -ginkgo.no-color \
    --csi.endpoint "unix://$dir/csi.sock" \
    --csi.mountdir "$dir/kubelet/csi-sanity/mount" \
    --csi.stagingdir "$dir/kubelet/csi-sanity/staging" \
    --csi.testvolumesize 67108864 \
    --csi.testvolumeexpandsize 134217728 \
    --csi.testnodevolumeattachlimit \
    "$@" >"$dir/csi-sanity.log" 2>&1 || rc=$?
  stop_plugin
  # Ginkgo's closing line: "SUCCESS! -- 91 Passed | 0 Failed | 1 Pending | 0 Skipped" (FAIL! when any failed).
  local counts passed failed pending skipped
  counts=$(grep -Eo '[0-9]+ Passed \| [0-9]+ Failed \| [0-9]+ Pending \| [0-9]+ Skipped' "$dir/csi-sanity.log" | tail -1 || true)
  if [ -n "$counts" ]; then
    read -r passed failed pending skipped < <(echo "$counts" | awk '{ print $1, $4, $7, $10 }')
    echo "csi-sanity pass $name: $passed passed, $failed failed, $pending pending, $skipped skipped"
  else
    echo "csi-sanity pass $name: no result (csi-sanity exit code $rc)"
  fi
  if [ "$rc" != 0 ] || [ -z "$counts" ] || [ "$failed" != 0 ] || { [ "$skipped" != 0 ] && [ "$extra_flags" = 0 ]; }; then
    failed_passes+=("$name")
    echo "---- $name: csi-sanity exit code $rc; failures and skips:" >&2
    grep -E '^\s*\[(FAIL|SKIPPED)\]|rpc error' "$dir/csi-sanity.log" | head -40 >&2 || true
    echo "---- $name: plugin log (last 20 lines):" >&2
    tail -20 "$dir/plugin.log" >&2
  fi
}

printf 'media: nbd\n' >"$work/nbd-parameters.yaml"
printf 'bandwidthLimit: 100Mi\niopsLimit: "500"\n' >"$work/nbd-mutable-parameters.yaml"
printf 'media: tmpfs\n' >"$work/tmpfs-parameters.yaml"
# Capacity is accounting (tmpfs allocates lazily): room for the attach-limit spec's 129 volumes of 64 MiB.
printf '{ "tmpfs": [ { "name": "default", "capacity": "16Gi" } ] }\n' >"$work/tmpfs-pools.json"

pass file -- "$@"
pass nbd --nbd-port-range 10809-10999 -- \
  --csi.testvolumeparameters "$work/nbd-parameters.yaml" --csi.testvolumemutableparameters "$work/nbd-mutable-parameters.yaml" "$@"
pass tmpfs --pools-config "$work/tmpfs-pools.json" -- --csi.testvolumeparameters "$work/tmpfs-parameters.yaml" "$@"

if [ ${#failed_passes[@]} -gt 0 ]; then
  echo "csi-sanity: FAILED passes: ${failed_passes[*]}" >&2
  exit 1
fi
echo "csi-sanity: every pass conforms (file, nbd, tmpfs)"
