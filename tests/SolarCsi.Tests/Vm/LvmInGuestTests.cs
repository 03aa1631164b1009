using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Devices;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Pools.Lvm;
using Xunit.Abstractions;
using static SolarCsi.Tests.Vm.GuestFacts;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The production <see cref="LvmPool"/> with its lvm2 commands run in the guest (device-mapper thin), on the guest's
/// virtio disk: thin and thick volumes, an online grow, a thin snapshot holding the old bytes, a restore from it, a
/// clone of a mounted volume, and removal.
/// </summary>
[Collection(VmCollection.Name)]
public sealed class LvmInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    private static readonly CancellationToken Ct = CancellationToken.None;

    [SkippableFact]
    public async Task ThinVolumesSnapshotsAndGrowOnRealDeviceMapper()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        var runner = new GuestProcessRunner(g);
        var filesystems = new Filesystems(runner);
        await g.RunOkAsync("modprobe virtio_blk && modprobe dm-thin-pool && mkdir -p /mnt/lvm-a /mnt/lvm-b");
        var disk = await g.RunOkAsync(
            $"for d in /sys/block/vd*; do [ \"$(cat $d/serial)\" = {QemuCommandLine.DiskSerial} ] && echo /dev/${{d##*/}}; done; true");
        Assert.StartsWith("/dev/vd", disk);
        const string vg = "solarvm";
        using var state = new TempDir();
        try
        {
            // Node set-up (an operator's job, not the driver's): a VG with a 256 MiB thin pool.
            await g.RunOkAsync($"pvcreate --yes {disk} && vgcreate --yes {vg} {disk} && lvcreate --yes --type thin-pool --name pool --size 256m {vg}");
            var pool = new LvmPool("vm", vg, "pool", state.Path, runner, NullLogger.Instance);
            await pool.InitializeAsync(Ct);
            Assert.Equal(256 * MiB, pool.Describe().TotalBytes);

            var source = Id("src");
            Assert.Equal(24 * MiB, (await pool.CreateVolumeAsync(source, "src", 20 * MiB + 1, 0, new(), null, Ct)).CapacityBytes);
            var device = await pool.PrepareBackingAsync(source, Ct);
            Assert.Equal($"/dev/{vg}/{PoolRecords.NameOf(source)}", device);
            await filesystems.FormatAsync(device, "ext4", [], Ct);
            await g.RunOkAsync($"mount {device} /mnt/lvm-a");
            var sha = await g.WriteRandomAsync("/mnt/lvm-a/data.bin", 8);

            // A snapshot of the mounted volume (lvm suspends it; device-mapper freezes the filesystem for the cut).
            var snap = StorageId.ForSnapshot("lvm", "vm", "n1", "snap").ToString();
            Assert.Equal(24 * MiB, (await pool.CreateSnapshotAsync(snap, "snap", source, Ct)).SizeBytes);
            await g.RunOkAsync("echo later > /mnt/lvm-a/after-snapshot && rm /mnt/lvm-a/data.bin && sync");

            // ControllerExpand + NodeExpand: the LV grows, then the mounted ext4 (resize2fs, online).
            Assert.Equal(40 * MiB, (await pool.ExpandVolumeAsync(source, 40 * MiB, Ct)).CapacityBytes);
            Assert.Equal(40 * MiB, await g.DeviceBytesAsync(device));
            await filesystems.GrowAsync(device, "/mnt/lvm-a", "ext4", Ct);
            Assert.Equal(40 * MiB, await filesystems.Ext4SizeAsync(device, Ct));

            // A volume restored from the snapshot (larger than it) holds the bytes as they were at the cut.
            var restored = Id("restored");
            Assert.Equal(48 * MiB,
                (await pool.CreateVolumeAsync(restored, "restored", 48 * MiB, 0, new(), new ContentSource { SnapshotId = snap }, Ct)).CapacityBytes);
            var restoredDevice = await pool.PrepareBackingAsync(restored, Ct);
            Assert.Equal(48 * MiB, await g.DeviceBytesAsync(restoredDevice));
            await g.RunOkAsync($"mount {restoredDevice} /mnt/lvm-b");
            Assert.Equal(sha, await g.ReadBackAsync("/mnt/lvm-b/data.bin"));
            Assert.Equal("absent", await g.RunOkAsync("[ -e /mnt/lvm-b/after-snapshot ] && echo present || echo absent"));

            // A clone of the mounted volume: a thin snapshot of it made writable, with what the volume holds now.
            var clone = Id("clone");
            Assert.Equal(40 * MiB, (await pool.CreateVolumeAsync(clone, "clone", 40 * MiB, 0, new(), new ContentSource { VolumeId = source }, Ct)).CapacityBytes);
            var cloneDevice = await pool.PrepareBackingAsync(clone, Ct);
            await g.RunOkAsync($"mkdir -p /mnt/lvm-c && mount {cloneDevice} /mnt/lvm-c");
            Assert.Equal("later", await g.RunOkAsync("cat /mnt/lvm-c/after-snapshot"));
            Assert.Equal("absent", await g.RunOkAsync("[ -e /mnt/lvm-c/data.bin ] && echo present || echo absent"));

            // A thick volume (StorageClass lvmType: thick): a plain LV out of the VG's free space, rounded up to extents.
            var thick = Id("thick");
            Assert.Equal(8 * MiB, (await pool.CreateVolumeAsync(thick, "thick", 6 * MiB, 0, new() { [LvmPool.TypeParameter] = "thick" }, null, Ct)).CapacityBytes);
            var thickDevice = await pool.PrepareBackingAsync(thick, Ct);
            Assert.Equal(8 * MiB, await g.DeviceBytesAsync(thickDevice));
            Assert.Equal("thick", await g.RunOkAsync($"printf thick | dd of={thickDevice} bs=1 seek={7 * MiB} conv=notrunc,fsync status=none && " +
                                                     $"dd if={thickDevice} bs=1 skip={7 * MiB} count=5 status=none"));

            // lvm itself, read through the driver's report parser.
            var (lvs, lvsArgs) = LvmCommands.ReportLogicalVolumes(vg);
            var report = LvmReport.ParseLogicalVolumes((await runner.RunAsync(lvs, lvsArgs, Ct)).StandardOutput);
            output.WriteLine(string.Join("\n", report.Select(l => $"{l.Name} {l.SizeBytes} {l.Attributes} origin={l.Origin} tags={string.Join(',', l.Tags)}")));
            var snapLv = Assert.Single(report, l => l.Name == PoolRecords.NameOf(snap));
            Assert.True(snapLv.IsThin);
            Assert.Equal(PoolRecords.NameOf(source), snapLv.Origin);
            Assert.True(snapLv.HasTag(LvmCommands.SnapshotTag));
            Assert.True(Assert.Single(report, l => l.Name == PoolRecords.NameOf(source)).IsOpen);
            Assert.False(Assert.Single(report, l => l.Name == PoolRecords.NameOf(thick)).IsThin);
            Assert.True(Assert.Single(report, l => l.Name == PoolRecords.NameOf(clone)).IsThin);

            // A mounted volume is open: the pool refuses to remove it.
            Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<RpcException>(() => pool.DeleteVolumeAsync(source, Ct))).StatusCode);
            await g.RunOkAsync("umount /mnt/lvm-a /mnt/lvm-b /mnt/lvm-c");
            foreach (var volume in new[] { restored, clone, source, thick }) await pool.DeleteVolumeAsync(volume, Ct);
            await pool.DeleteSnapshotAsync(snap, Ct);
            Assert.Equal(["pool"], LvmReport.ParseLogicalVolumes((await runner.RunAsync(lvs, lvsArgs, Ct)).StandardOutput).Select(l => l.Name));
            Assert.Equal(256 * MiB, pool.Describe().FreeBytes);
        }
        finally
        {
            output.WriteLine(string.Join("\n", runner.Commands));
            await g.ShellAsync($"umount /mnt/lvm-a /mnt/lvm-b /mnt/lvm-c; vgremove --yes --force {vg}; pvremove --yes {disk}; wipefs -a {disk}");
        }
    }

    private static string Id(string name) => StorageId.ForVolume("lvm", "vm", "n1", name).ToString();
}
