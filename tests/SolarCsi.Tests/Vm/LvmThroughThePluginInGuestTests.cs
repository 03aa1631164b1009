using System.Globalization;
using Csi.V1;
using Xunit.Abstractions;
using static SolarCsi.Tests.Vm.GuestFacts;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// LVM volumes through the NativeAOT plugin in the guest (real device-mapper thin), driven over CSI, on a VG the test
/// makes as an operator would on the guest's virtio disk: pool "default" is the VG's 256 MiB thin pool, pool "thick" the
/// VG itself. Capacity is checked against what lvm reports, not against the driver's own arithmetic.
/// </summary>
[Collection(VmCollection.Name)]
public sealed class LvmThroughThePluginInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    private const string Vg = "solarvm";
    private static readonly Dictionary<string, string> Thin = new() { ["media"] = "lvm" };
    private static readonly Dictionary<string, string> Thick = new() { ["media"] = "lvm", ["pool"] = "thick" };

    [SkippableFact]
    public async Task ThinAndThickVolumesSnapshotsClonesAndOnlineGrowthWithCapacityAsLvmReportsIt()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        var disk = await MakeVolumeGroupAsync(g);
        try
        {
            await using var plugin = await StartPluginAsync(g);
            try
            {
                Assert.Equal(256 * MiB, await CapacityAsync(plugin, Thin));
                await AssertCapacityAsLvmReportsAsync(g, plugin);

                // A thin ext4 volume, rounded up to whole 4 MiB extents, written.
                var source = await GuestVolume.CreateAndAttachAsync(g, plugin, "lvm-src", "lvm", 20 * MiB + 1);
                Assert.Equal(24 * MiB, source.Volume.CapacityBytes);
                var sha = await g.WriteRandomAsync(source.Target + "/data.bin", 8);

                // A snapshot of the mounted volume, then the volume changes and grows online (LV, then the mounted ext4).
                var snapshot = (await plugin.Controller.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "lvm-snap", SourceVolumeId = source.Id },
                    deadline: GuestVolume.Deadline())).Snapshot;
                Assert.True(snapshot.ReadyToUse);
                Assert.Equal(24 * MiB, snapshot.SizeBytes);
                await g.RunOkAsync($"echo later > {source.Target}/after-snapshot && rm {source.Target}/data.bin && sync");
                var before = await g.FilesystemBytesAsync(source.Target);
                Assert.Equal(40 * MiB, await source.GrowOnlineAsync(40 * MiB));
                Assert.True(await g.FilesystemBytesAsync(source.Target) > before + 12 * MiB, "the mounted ext4 did not grow with its LV");
                await AssertCapacityAsLvmReportsAsync(g, plugin);

                // Restored from the snapshot (larger than it): the bytes as they were at the cut.
                var restored = await GuestVolume.CreateAndAttachAsync(g, plugin, "lvm-restored", "lvm", 48 * MiB,
                    source: new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = snapshot.SnapshotId } });
                Assert.Equal(48 * MiB, restored.Volume.CapacityBytes);
                Assert.Equal(sha, await g.ReadBackAsync(restored.Target + "/data.bin"));
                Assert.Equal("absent", await g.RunOkAsync($"[ -e {restored.Target}/after-snapshot ] && echo present || echo absent"));

                // A clone of the mounted, grown volume: what it holds now.
                var clone = await GuestVolume.CreateAndAttachAsync(g, plugin, "lvm-clone", "lvm", 40 * MiB,
                    source: new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = source.Id } });
                Assert.Equal("later", await g.RunOkAsync($"cat {clone.Target}/after-snapshot"));
                Assert.Equal("absent", await g.RunOkAsync($"[ -e {clone.Target}/data.bin ] && echo present || echo absent"));

                // Thick, raw block: a plain LV out of the VG's free extents.
                var thick = await GuestVolume.CreateAndAttachAsync(g, plugin, "lvm-thick", "lvm", 6 * MiB, GuestVolume.Block(), Thick);
                Assert.Equal(8 * MiB, thick.Volume.CapacityBytes);
                Assert.Equal("thick", await g.RunOkAsync($"printf thick | dd of={thick.Target} bs=1 seek={7 * MiB} conv=notrunc,fsync status=none && " +
                                                         $"dd if={thick.Target} bs=1 skip={7 * MiB} count=5 status=none"));
                var lvs = await g.RunOkAsync($"lvs --noheadings -o lv_name,lv_attr,pool_lv,origin {Vg}");
                output.WriteLine(lvs);
                Assert.Equal(6, lvs.Split('\n').Length); // the thin pool, the snapshot, three thin volumes, one thick
                await AssertCapacityAsLvmReportsAsync(g, plugin);

                foreach (var volume in new[] { restored, clone, source, thick }) await volume.DeleteAsync();
                await plugin.Controller.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = snapshot.SnapshotId }, deadline: GuestVolume.Deadline());
                Assert.Equal("pool", await g.RunOkAsync($"lvs --noheadings -o lv_name {Vg} | tr -d ' '"));
                Assert.Equal(256 * MiB, await CapacityAsync(plugin, Thin));
                await AssertCapacityAsLvmReportsAsync(g, plugin);
            }
            finally
            {
                output.WriteLine(await plugin.LogTailAsync());
            }
        }
        finally
        {
            await RemoveVolumeGroupAsync(g, disk);
        }
    }

    /// <summary>
    /// CreateVolumeGroupSnapshot over a mounted thin LVM volume and a mounted file volume while a writer appends a
    /// sequence to one, then the other. A filesystem frozen with FIFREEZE cannot be suspended by device-mapper on this
    /// kernel (6.1: the thin snapshot failed with EBUSY when the group froze it too — found here), so the plugin leaves
    /// the LVM member to its snapshot's own freeze and cuts it last, while the file member is still frozen. Restored,
    /// the two copies are one point in time (file = lvm or lvm + 1), and the writer went on afterwards. Two LVM members
    /// cannot be one point in time that way: refused before anything is frozen.
    /// </summary>
    [SkippableFact]
    public async Task AGroupSnapshotWithAThinMemberUnderAWriterIsOnePointInTime()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        var disk = await MakeVolumeGroupAsync(g);
        try
        {
            // The file pool snapshots a mounted volume only by reflink: its state directory on xfs, as on a real node.
            await g.RunOkAsync($"modprobe loop && truncate -s 512M /run/state.xfs && mkfs.xfs -q /run/state.xfs && mkdir -p {GuestPlugin.StateDir} && " +
                               $"mount -o loop /run/state.xfs {GuestPlugin.StateDir}");
            await using var plugin = await GuestPlugin.StartAsync(g, "--pools-config /run/pools.json --file-pool-capacity 256Mi");
            var groups = new GroupController.GroupControllerClient(plugin.Channel);
            try
            {
                var file = await GuestVolume.CreateAndAttachAsync(g, plugin, "g-file", "file", 16 * MiB);
                var lvm = await GuestVolume.CreateAndAttachAsync(g, plugin, "g-lvm", "lvm", 16 * MiB);
                await g.RunOkAsync("cat > /run/seq.sh <<'EOF'\n" +
                    // One write(2) of a fixed width in place: a freeze holds it whole or not at all (echo > f truncates first).
                    $"n=0; while :; do n=$((n + 1)); for f in {file.Target}/seq {lvm.Target}/seq; do printf %020d $n | dd of=$f conv=notrunc status=none; done; done\nEOF\n" +
                    $"setsid -f bash /run/seq.sh < /dev/null > /dev/null 2>&1; sleep 1; cat {file.Target}/seq");
                var group = (await groups.CreateVolumeGroupSnapshotAsync(
                    new CreateVolumeGroupSnapshotRequest { Name = "lvm-group", SourceVolumeIds = { file.Id, lvm.Id } }, deadline: GuestVolume.Deadline())).GroupSnapshot;
                var afterwards = long.Parse(await g.RunOkAsync($"cat {file.Target}/seq"), CultureInfo.InvariantCulture);
                await g.RunOkAsync($"sleep 1; [ $(cat {file.Target}/seq) -gt {afterwards} ]");
                Assert.Equal(2, group.Snapshots.Count);

                // A second LVM member: refused up front, nothing frozen (the writer goes on), no snapshot left.
                var other = await GuestVolume.CreateAndAttachAsync(g, plugin, "g-lvm2", "lvm", 16 * MiB);
                var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => groups.CreateVolumeGroupSnapshotAsync(
                    new CreateVolumeGroupSnapshotRequest { Name = "two-lvm", SourceVolumeIds = { lvm.Id, other.Id, file.Id } }, deadline: GuestVolume.Deadline()).ResponseAsync);
                Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, refused.StatusCode);
                output.WriteLine(refused.Status.Detail);
                var now = long.Parse(await g.RunOkAsync($"cat {file.Target}/seq"), CultureInfo.InvariantCulture);
                await g.RunOkAsync($"sleep 1; [ $(cat {file.Target}/seq) -gt {now} ]");
                await g.RunOkAsync("pkill -f /run/seq.sh; sleep 0.2");
                await other.DeleteAsync();

                var values = new Dictionary<string, long>();
                var copies = new List<GuestVolume>();
                foreach (var member in group.Snapshots)
                {
                    var media = member.SourceVolumeId == file.Id ? "file" : "lvm";
                    var copy = await GuestVolume.CreateAndAttachAsync(g, plugin, "copy-" + media, media, 16 * MiB,
                        source: new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = member.SnapshotId } });
                    copies.Add(copy);
                    values[media] = long.Parse(await g.RunOkAsync($"cat {copy.Target}/seq"), CultureInfo.InvariantCulture);
                }
                output.WriteLine($"at the cut: file {values["file"]}, lvm {values["lvm"]}; the writer was at {afterwards} right after");
                Assert.True(values["file"] - values["lvm"] is 0 or 1, $"not one point in time: file at {values["file"]}, lvm at {values["lvm"]}");

                foreach (var volume in copies.Append(file).Append(lvm)) await volume.DeleteAsync();
                await groups.DeleteVolumeGroupSnapshotAsync(new DeleteVolumeGroupSnapshotRequest { GroupSnapshotId = group.GroupSnapshotId }, deadline: GuestVolume.Deadline());
                Assert.Equal("pool", await g.RunOkAsync($"lvs --noheadings -o lv_name {Vg} | tr -d ' '"));
            }
            finally
            {
                await g.ShellAsync("pkill -f /run/seq.sh");
                output.WriteLine(await plugin.LogTailAsync());
            }
        }
        finally
        {
            await g.ShellAsync($"umount {GuestPlugin.StateDir}; rm -f /run/state.xfs");
            await RemoveVolumeGroupAsync(g, disk);
        }
    }

    /// <summary>Node set-up, an operator's job: a VG on the guest's disk with a 256 MiB thin pool; the plugin's pools declared.</summary>
    private static async Task<string> MakeVolumeGroupAsync(VmTestHost g)
    {
        await g.RunOkAsync("modprobe virtio_blk && modprobe dm-thin-pool");
        var disk = await g.RunOkAsync(
            $"for d in /sys/block/vd*; do [ \"$(cat $d/serial)\" = {QemuCommandLine.DiskSerial} ] && echo /dev/${{d##*/}}; done; true");
        Assert.StartsWith("/dev/vd", disk);
        await g.RunOkAsync($"pvcreate --yes {disk} && vgcreate --yes {Vg} {disk} && lvcreate --yes --type thin-pool --name pool --size 256m {Vg} && " +
            $"echo '{{\"lvm\": [{{\"name\": \"default\", \"volumeGroup\": \"{Vg}\", \"thinPool\": \"pool\"}}, {{\"name\": \"thick\", \"volumeGroup\": \"{Vg}\"}}]}}' > /run/pools.json");
        return disk;
    }

    private static Task<GuestPlugin> StartPluginAsync(VmTestHost g) => GuestPlugin.StartAsync(g, "--pools-config /run/pools.json");

    private static Task RemoveVolumeGroupAsync(VmTestHost g, string disk) =>
        g.ShellAsync($"vgremove --yes --force {Vg}; pvremove --yes {disk}; wipefs -a {disk}; rm -f /run/pools.json");

    private static async Task<long> CapacityAsync(GuestPlugin plugin, IDictionary<string, string> parameters) =>
        (await plugin.Controller.GetCapacityAsync(new GetCapacityRequest { Parameters = { parameters } }, deadline: GuestVolume.Deadline())).AvailableCapacity;

    /// <summary>
    /// GetCapacity as lvm itself reports it: the thin pool's size less the virtual sizes of its thin volumes (the driver
    /// does not over-commit), and the VG's free bytes for the thick pool.
    /// </summary>
    private async Task AssertCapacityAsLvmReportsAsync(VmTestHost g, GuestPlugin plugin)
    {
        var pool = long.Parse(await g.RunOkAsync($"lvs --noheadings --units b --nosuffix -o lv_size {Vg}/pool | tr -d ' '"), CultureInfo.InvariantCulture);
        var thin = (await g.RunOkAsync($"lvs --noheadings --units b --nosuffix -o lv_size,pool_lv {Vg} | awk '$2 == \"pool\" {{ s += $1 }} END {{ print s + 0 }}'"));
        var vgFree = long.Parse(await g.RunOkAsync($"vgs --noheadings --units b --nosuffix -o vg_free {Vg} | tr -d ' '"), CultureInfo.InvariantCulture);
        output.WriteLine($"lvm: thin pool {pool}, thin volumes {thin}, VG free {vgFree}");
        Assert.Equal(pool - long.Parse(thin, CultureInfo.InvariantCulture), await CapacityAsync(plugin, Thin));
        Assert.Equal(vgFree, await CapacityAsync(plugin, Thick));
    }
}
