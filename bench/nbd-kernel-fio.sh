#!/usr/bin/env bash
# The kernel NBD data path (nbd module + nbd-client, the production attach path), which this host's kernel lacks,
# measured in the VM test host: fio through /dev/nbd0 — nbdkit exporting an image with TLS-PSK as the driver's exports
# do, the driver's local TLS proxy on a unix socket, nbd-client — against fio on a file of the same guest's virtio disk.
# Under TCG (no KVM here) absolute figures mean little: the report gives the ratio to the local disk, measured in the
# same guest in the same run. Writes bench/RESULTS-nbd-kernel.md.
# Usage (root, Debian 12): bench/nbd-kernel-fio.sh [seconds-per-job]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_JOB=${1:-10}
OUT=bench/RESULTS-nbd-kernel.md
tests/vm/prepare-assets.sh
command -v fio >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fio; }
A=${SOLAR_VM_ASSETS:-/var/cache/solar-vm}
D=$(mktemp -d /var/tmp/solar-nbd-bench.XXXXXX); W=$D/work; mkdir -p "$W/cmd"
QPID=
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
cp tests/vm/guest-agent.sh "$W/"; chmod +x "$W/guest-agent.sh"
truncate -s 2G "$D/disk0.img"
# The same guest as the tests' (tests/SolarCsi.Tests/Vm/QemuCommandLine.cs): TCG, no network device, the host's
# userland read-only over 9p, a command port; a 2 GiB virtio disk for the local side and the export's image.
timeout 1800 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024M -machine pc -nodefaults -nic none -display none -monitor none \
  -no-reboot -serial "file:$D/console.log" -kernel "$A/vmlinuz" -initrd "$A/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 vmagent=$W/guest-agent.sh vmwork=$W" \
  -fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap -device virtio-9p-pci,fsdev=root,mount_tag=hostroot \
  -fsdev "local,id=mods,path=$A/modules,security_model=none,readonly=on" -device virtio-9p-pci,fsdev=mods,mount_tag=mods \
  -fsdev "local,id=work,path=$W,security_model=none" -device virtio-9p-pci,fsdev=work,mount_tag=work \
  -device virtio-serial-pci -chardev "socket,id=ctl,path=$D/ctl.sock,server=on,wait=off" -device virtserialport,chardev=ctl,name=ctl \
  -drive "if=none,id=disk0,file=$D/disk0.img,format=raw,cache=none,aio=threads" -device virtio-blk-pci,drive=disk0,serial=solar-disk0 &
QPID=$!
for _ in $(seq 300); do [ -S "$D/ctl.sock" ] && break; sleep 0.1; done
coproc AGENT { socat - "UNIX-CONNECT:$D/ctl.sock"; }
read -r ready <&"${AGENT[0]}"; [ "$ready" = ready ] || { echo "guest agent said: $ready" >&2; tail "$D/console.log" >&2; exit 1; }
n=0
guest() { # guest SCRIPT: runs it in the guest, prints its stdout, fails with its stderr
  n=$((n + 1)); printf '%s\n' "$1" > "$W/cmd/$n.sh"; echo "900 $n" >&"${AGENT[1]}"; read -r rc <&"${AGENT[0]}"
  cat "$W/cmd/$n.out"; [ "$rc" = rc=0 ] || { echo "guest: $1 -> $rc" >&2; cat "$W/cmd/$n.err" >&2; return 1; }
}
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
guest "modprobe virtio_blk && modprobe nbd nbds_max=2 && mkfs.ext4 -q -F /dev/vda && mkdir -p /mnt/disk /run/nbd && mount /dev/vda /mnt/disk &&
  dd if=/dev/zero of=/mnt/disk/local.img bs=1M count=640 oflag=direct status=none &&
  dd if=/dev/zero of=/mnt/disk/export.img bs=1M count=640 oflag=direct status=none &&
  echo bench-node:$KEY > /run/nbd/server.psk && echo bench-node:$KEY > /run/nbd/client.psk && chmod 600 /run/nbd/*.psk &&
  nbdkit --pidfile /run/nbd/export.pid --ipaddr 127.0.0.1 --port 10809 --tls=require --tls-psk=/run/nbd/server.psk --threads=4 \
    --filter=rate file file=/mnt/disk/export.img rate=1000000000000 &&
  nbdkit --pidfile /run/nbd/proxy.pid --unix /run/nbd/proxy.sock --threads=4 nbd hostname=127.0.0.1 port=10809 tls=require \
    tls-psk=/run/nbd/client.psk tls-username=bench-node &&
  for i in \$(seq 50); do [ -S /run/nbd/proxy.sock ] && break; sleep 0.1; done &&
  nbd-client -unix /run/nbd/proxy.sock /dev/nbd0 -block-size 4096 -timeout 30 >/dev/null 2>&1 && blockdev --getsize64 /dev/nbd0 &&
  nbdkit --pidfile /run/nbd/plain.pid --unix /run/nbd/plain.sock --threads=4 file file=/mnt/disk/export.img &&
  for i in \$(seq 50); do [ -S /run/nbd/plain.sock ] && break; sleep 0.1; done &&
  nbd-client -unix /run/nbd/plain.sock /dev/nbd1 -block-size 4096 -timeout 30 >/dev/null 2>&1" >/dev/null
JOBS=("randread 4k 16" "randwrite 4k 16" "read 1M 4" "write 1M 4")
declare -A RESULT
for job in "${JOBS[@]}"; do
  read -r rw bs depth <<<"$job"
  for target in /mnt/disk/local.img /dev/nbd0 /dev/nbd1; do
    # terse v3: field 8 read IOPS, 7 read KiB/s, 49 write IOPS, 48 write KiB/s
    line=$(guest "fio --name=b --filename=$target --rw=$rw --bs=$bs --iodepth=$depth --ioengine=libaio --direct=1 --size=512M \
      --time_based --runtime=$SECONDS_PER_JOB --ramp_time=2 --minimal --terse-version=3")
    case $rw in *read) iops=$(cut -d';' -f8 <<<"$line"); kib=$(cut -d';' -f7 <<<"$line");;
                *) iops=$(cut -d';' -f49 <<<"$line"); kib=$(cut -d';' -f48 <<<"$line");; esac
    # field 5: fio's error code for the job (0 = every I/O succeeded)
    err=$(cut -d';' -f5 <<<"$line"); [ "$err" = 0 ] || { echo "fio $rw on $target: error $err" >&2; exit 1; }
    RESULT["$rw $target"]="$iops $kib"
    echo "$rw $bs qd$depth $target: $iops IOPS, $((kib / 1024)) MiB/s"
  done
done
guest "nbd-client -d /dev/nbd0 >/dev/null 2>&1; nbd-client -d /dev/nbd1 >/dev/null 2>&1; kill \$(cat /run/nbd/proxy.pid) \$(cat /run/nbd/export.pid) \$(cat /run/nbd/plain.pid); umount /mnt/disk" >/dev/null || true
{
  echo "# Kernel NBD data path in the VM test host (bench/nbd-kernel-fio.sh)"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) host cores, QEMU TCG guest (2 vCPUs, 1 GiB, Debian $(cat "$A/kver")), ${SECONDS_PER_JOB} s per job after 2 s ramp, O_DIRECT, libaio."
  echo "local = a file on ext4 on the guest's virtio disk; nbd = /dev/nbd0 ← nbd-client ← the driver's TLS-PSK proxy (nbdkit nbd plugin,"
  echo "unix socket) ← nbdkit export (TLS-PSK, --threads=4, rate filter; the driver's export flags) of a file on the same ext4;"
  echo "plain = /dev/nbd1 ← nbd-client ← nbdkit on a unix socket, no TLS, no proxy, same file (not a driver path: it shows what"
  echo "the TLS and the proxy hop cost here)."
  echo
  echo "**Under TCG every guest instruction is emulated: absolute figures say nothing about real hardware. The ratio — the"
  echo "same job on the same disk in the same guest, with and without the NBD path — is the figure to read, and even it is a"
  echo "lower bound: the local path's data is moved by qemu's own host threads (virtio DMA), while the NBD path is CPU work"
  echo "inside the guest (TLS both ways, two nbdkit hops, the kernel's nbd driver), all of it emulated. What the run does show"
  echo "for real: the production attach path under sustained random and sequential load, every I/O successful (fio error 0"
  echo "in every job; the script fails otherwise).**"
  echo
  echo "| job | local IOPS | nbd IOPS | nbd / local | plain IOPS | plain / local | local MiB/s | nbd MiB/s |"
  echo "|---|---|---|---|---|---|---|---|"
  for job in "${JOBS[@]}"; do
    read -r rw bs depth <<<"$job"
    read -r li lk <<<"${RESULT["$rw /mnt/disk/local.img"]}"; read -r ni nk <<<"${RESULT["$rw /dev/nbd0"]}"
    read -r pi _ <<<"${RESULT["$rw /dev/nbd1"]}"
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
    echo "| $rw $bs qd$depth | $li | $ni | $(ratio "$ni" "$li") | $pi | $(ratio "$pi" "$li") | $((lk / 1024)) | $((nk / 1024)) |"
  done
} > "$OUT"
cat "$OUT"
