#!/usr/bin/env bash
# fio through an NBD volume attached by the driver vs a local loop device, same run; writes bench/RESULTS-nbd.md.
# Usage (root, Debian 12): bench/nbd-fio.sh [seconds-per-job]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-prereqs.sh
command -v fio >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio; }
dotnet build -c Release src/Cli >/dev/null
dotnet run --no-build -c Release --project src/Cli -- bench-nbd --out bench/RESULTS-nbd.md --seconds "${1:-15}"
