#!/usr/bin/env bash
# Runs the upstream csi-sanity against the single-machine deployment (controller + one node plugin).
# Our own suite (dotnet test) does not need csi-sanity; this script is for users who have the binary.
# Usage: sanity-tests/csi-sanity.sh [extra csi-sanity flags, e.g. -ginkgo.focus=Node]
# Two passes: file volumes (the default media), then NBD volumes with mutable parameters, so the ModifyVolume specs
# run too (mutable parameters apply to NBD only). Both pass the attach-limit spec's flag.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v csi-sanity >/dev/null; then
  echo "csi-sanity is not on PATH; skipping (build it from kubernetes-csi/csi-test)"; exit 0
fi
dir=$(mktemp -d /tmp/solar-csi-sanity.XXXXXX)
dotnet build -c Release src/Cli >/dev/null
log="$dir/cluster.out"
dotnet run --no-build -c Release --project src/Cli -- cluster --dir "$dir" --nodes 1 >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 120); do grep -q '^ready$' "$log" && break; kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }; sleep 0.5; done
grep -q '^ready$' "$log" || { cat "$log"; echo "cluster did not start" >&2; exit 1; }
printf 'media: nbd\n' > "$dir/nbd-parameters.yaml"
printf 'bandwidthLimit: 100Mi\niopsLimit: "500"\n' > "$dir/nbd-mutable-parameters.yaml"
run() {
csi-sanity \
  --csi.endpoint "unix://$dir/node-a/csi.sock" \
  --csi.controllerendpoint "unix://$dir/controller/csi.sock" \
  --csi.mountdir "$dir/kubelet/csi-sanity/mount" \
  --csi.stagingdir "$dir/kubelet/csi-sanity/staging" \
  --csi.testvolumesize 67108864 \
  --csi.testvolumeexpandsize 134217728 \
  --csi.testnodevolumeattachlimit \
  "$@"
}
echo "== csi-sanity, file volumes"
run "$@"
echo "== csi-sanity, NBD volumes with mutable parameters"
run --csi.testvolumeparameters "$dir/nbd-parameters.yaml" --csi.testvolumemutableparameters "$dir/nbd-mutable-parameters.yaml" "$@"
