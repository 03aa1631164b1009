#!/bin/bash
# PID 1 of the test guest after switch_root: runs the host's commands from a virtio-serial port named "ctl".
# Protocol, one line each way (the host side is tests/SolarCsi.Tests/Vm/VmTestHost.cs):
#   host -> guest:  <timeout seconds> <base64 of a bash script>   (base64: arguments may hold any byte, newlines too)
#   guest -> host:  rc=<N> <base64 stdout> <base64 stderr>      ("quit" powers the guest off)
# Output goes through files, not pipes, so a daemon a command starts (nbdkit) cannot hold the answer back.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LC_ALL=C
export DM_DISABLE_UDEV=1   # no udevd here: libdevmapper/LVM make their own /dev nodes
B=/run/busybox
$B hostname solar-vm; $B ip link set lo up
off() { echo "[agent] $*"; $B sync; $B poweroff -f; }
modprobe virtio_console || off "no virtio_console"
P=
for _ in $(seq 100); do
  for d in /sys/class/virtio-ports/*; do [ "$(cat "$d/name" 2>/dev/null)" = ctl ] && P=/dev/$(basename "$d"); done
  [ -n "$P" ] && [ -c "$P" ] && break; P=; sleep 0.05
done
[ -n "$P" ] || off "no virtio-serial port named ctl"
echo "[agent] $(cut -d' ' -f1 /proc/uptime)s ready on $P"
exec 3<>"$P"
echo "ready" >&3
while IFS= read -r line <&3; do
  [ "$line" = quit ] && break
  t=${line%% *}; cmd=$(printf '%s' "${line#* }" | base64 -d)
  (cd /tmp && timeout -k 5 "$t" bash -c "$cmd") </dev/null >/run/agent.out 2>/run/agent.err; rc=$?
  echo "rc=$rc $(base64 -w0 </run/agent.out) $(base64 -w0 </run/agent.err)" >&3
done
off "quit"
