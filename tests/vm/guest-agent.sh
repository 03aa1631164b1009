#!/bin/bash
# PID 1 of the test guest after switch_root: runs the host's commands, one at a time, from a virtio-serial port
# named "ctl". The host side is tests/SolarCsi.Tests/Vm/VmTestHost.cs. Protocol, one line each way:
#   host -> guest:  <timeout seconds> <n>      the script is $VMWORK/cmd/<n>.sh (written by the host)
#   guest -> host:  rc=<n's exit code>         stdout and stderr are $VMWORK/cmd/<n>.out and <n>.err
#   "quit" powers the guest off; so does the host closing its end.
# A daemon a command starts must leave the command's process tree (setsid -f, or one that forks itself like
# nbdkit without --foreground): a plain "cmd &" child does not outlive the command here (measured).
# Files on the read-write share instead of encoding in the line: under TCG every process costs tens of
# milliseconds, so the loop starts only timeout(1) and bash per command. Files, not pipes, also mean a daemon
# a command starts (nbdkit) cannot hold the answer back.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LC_ALL=C
export DM_DISABLE_UDEV=1   # no udevd here: libdevmapper/LVM make their own /dev nodes
B=/run/busybox
off() { echo "[agent] $*"; $B sync; $B poweroff -f; }
read -r cmdline </proc/cmdline
W=; for a in $cmdline; do case $a in vmwork=*) W=${a#vmwork=};; esac; done
[ -n "$W" ] && [ -d "$W" ] || off "no vmwork= share"
$B hostname solar-vm; $B ip link set lo up
modprobe virtio_console || off "no virtio_console"
P=
for _ in $(seq 100); do
  for d in /sys/class/virtio-ports/*; do [ "$(cat "$d/name" 2>/dev/null)" = ctl ] && P=/dev/$(basename "$d"); done
  [ -n "$P" ] && [ -c "$P" ] && break; P=; sleep 0.05
done
[ -n "$P" ] || off "no virtio-serial port named ctl"
read -r up _ </proc/uptime; echo "[agent] ${up}s ready on $P"
cd /tmp
exec 3<>"$P"
echo "ready" >&3
while read -r t n <&3; do
  [ "$t" = quit ] && break
  # 3>&-: the port must not leak into daemons a command starts (lvm warns about every leaked descriptor).
  timeout -k 5 "$t" bash "$W/cmd/$n.sh" </dev/null >"$W/cmd/$n.out" 2>"$W/cmd/$n.err" 3>&-
  echo "rc=$?" >&3
done
off "quit"
