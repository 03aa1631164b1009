using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;

namespace SolarCsi.SanityTests;

/// <summary>tmpfs volumes on node-a (512 MiB pool): memory-backed filesystems, placed and accounted like any local media.</summary>
[Collection(ClusterCollection.Name)]
public sealed class TmpfsConformanceTests(ClusterFixture fx)
{
    private Csi.V1.Controller.ControllerClient C => fx.Controller;

    private static CreateVolumeRequest NewTmpfs(long bytes, string fsType = "") => ClusterFixture.NewVolumeOf("tmpfs", bytes, ClusterFixture.Mount(fsType));

    [Fact]
    public async Task LifecycleKeepsDataAcrossReStagesGrowsByRemountAndForgetsOnDelete()
    {
        var volume = await fx.CreateAsync(NewTmpfs(64L << 20));
        var steps = new NodeSteps(fx, volume, ClusterFixture.Mount(""));
        var payload = RandomNumberGenerator.GetBytes(8 << 20);
        try
        {
            Assert.Equal(NodeTopology.Of(ClusterFixture.NodeA), volume.AccessibleTopology.Single().Segments);
            await steps.AttachAsync();
            var mount = Assert.Single(await MountsAtAsync(steps.Target));
            Assert.Equal("tmpfs", mount.FsType);
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "data.bin"), payload);
            Assert.Equal(64L << 20, (await StatsAsync(volume.VolumeId, steps.Target)).Total);

            // The tmpfs lives as long as the volume, not as long as the stage.
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            await steps.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"))));

            // Full at 64 MiB; after a live expansion the pod can write past it, without any node step.
            await Assert.ThrowsAnyAsync<IOException>(() => File.WriteAllBytesAsync(Path.Combine(steps.Target, "big.bin"), new byte[60 << 20]));
            File.Delete(Path.Combine(steps.Target, "big.bin"));
            var grown = await C.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
            {
                VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 128L << 20 }, VolumeCapability = ClusterFixture.Mount(""),
            });
            Assert.Equal(128L << 20, grown.CapacityBytes);
            Assert.False(grown.NodeExpansionRequired);
            Assert.Equal(128L << 20, (await StatsAsync(volume.VolumeId, steps.Target)).Total);
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "big.bin"), new byte[100 << 20]);

            // Not while it is in use.
            await Expect.Code(StatusCode.FailedPrecondition, async () => await C.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId }));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        // Deleted means gone: no tmpfs of this volume is mounted anywhere any more.
        var name = StorageId.ParseVolume(volume.VolumeId).Name;
        Assert.DoesNotContain(await File.ReadAllLinesAsync("/proc/self/mountinfo"), l => l.Contains("solar-" + name, StringComparison.Ordinal));
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [Fact]
    public async Task WhatTmpfsCannotDoIsRefusedUpFront()
    {
        var block = ClusterFixture.NewVolume(16L << 20, ClusterFixture.Block());
        block.Parameters["media"] = "tmpfs";
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(block));
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(NewTmpfs(16L << 20, "ext4")));
        var mkfs = NewTmpfs(16L << 20);
        mkfs.Parameters["mkfsOptions"] = "-m 0";
        Assert.Contains("mkfsOptions", (await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(mkfs))).Status.Detail);
        await Expect.Code(StatusCode.ResourceExhausted, async () => await C.CreateVolumeAsync(NewTmpfs(1L << 30)));
        // Only node-a has a tmpfs pool.
        var onB = NewTmpfs(16L << 20);
        onB.AccessibilityRequirements = ClusterFixture.On(ClusterFixture.NodeB);
        await Expect.Code(StatusCode.ResourceExhausted, async () => await C.CreateVolumeAsync(onB));

    }

    [Fact]
    public async Task SnapshotsRestoreAndClonesCarryTheFilesAndAreRefusedWhileAPodMountsTheVolume()
    {
        var volume = await fx.CreateAsync(NewTmpfs(32L << 20));
        var steps = new NodeSteps(fx, volume, ClusterFixture.Mount(""));
        var payload = RandomNumberGenerator.GetBytes(4 << 20);
        var snapshotName = "snap-" + Guid.NewGuid().ToString("N");
        var created = new List<string>();
        string? snapshotId = null;
        try
        {
            await steps.AttachAsync();
            Directory.CreateDirectory(Path.Combine(steps.Target, "dir"));
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "dir", "data.bin"), payload);
            File.CreateSymbolicLink(Path.Combine(steps.Target, "link"), "dir/data.bin");
            File.SetUnixFileMode(Path.Combine(steps.Target, "dir", "data.bin"), UnixFileMode.UserRead | UnixFileMode.UserWrite);

            // tmpfs cannot be frozen: while a pod mounts it, a copy could be torn, so none is taken.
            var inUse = await Expect.Code(StatusCode.FailedPrecondition, async () =>
                await C.CreateSnapshotAsync(new CreateSnapshotRequest { Name = snapshotName, SourceVolumeId = volume.VolumeId }));
            Assert.Contains("frozen", inUse.Status.Detail);
            var cloneWhileInUse = NewTmpfs(32L << 20);
            cloneWhileInUse.VolumeContentSource = new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = volume.VolumeId } };
            await Expect.Code(StatusCode.FailedPrecondition, async () => await C.CreateVolumeAsync(cloneWhileInUse));
            Assert.Empty((await C.ListSnapshotsAsync(new ListSnapshotsRequest { SourceVolumeId = volume.VolumeId })).Entries);

            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            var snapshot = (await C.CreateSnapshotAsync(new CreateSnapshotRequest { Name = snapshotName, SourceVolumeId = volume.VolumeId })).Snapshot;
            snapshotId = snapshot.SnapshotId;
            Assert.True(snapshot.ReadyToUse);
            Assert.Equal(32L << 20, snapshot.SizeBytes);
            // The original changes afterwards; the snapshot keeps the moment it was taken.
            await steps.AttachAsync();
            await File.WriteAllTextAsync(Path.Combine(steps.Target, "dir", "data.bin"), "overwritten");
            await steps.DetachQuietlyAsync();

            // A volume no bigger than 16 MiB cannot hold a 32 MiB snapshot.
            var tooSmall = NewTmpfs(0);
            tooSmall.CapacityRange = new CapacityRange { LimitBytes = 16L << 20 };
            tooSmall.VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = snapshot.SnapshotId } };
            await Expect.Code(StatusCode.OutOfRange, async () => await C.CreateVolumeAsync(tooSmall));

            var restoreRequest = NewTmpfs(64L << 20);
            restoreRequest.VolumeContentSource = tooSmall.VolumeContentSource;
            var restored = await fx.CreateAsync(restoreRequest);
            created.Add(restored.VolumeId);
            Assert.Equal(64L << 20, restored.CapacityBytes);
            var cloneRequest = NewTmpfs(32L << 20);
            cloneRequest.VolumeContentSource = cloneWhileInUse.VolumeContentSource;
            var clone = await fx.CreateAsync(cloneRequest);
            created.Add(clone.VolumeId);

            var restoredSteps = new NodeSteps(fx, restored, ClusterFixture.Mount(""));
            await restoredSteps.AttachAsync();
            try
            {
                var file = Path.Combine(restoredSteps.Target, "dir", "data.bin");
                Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(file)));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
                Assert.Equal("dir/data.bin", new FileInfo(Path.Combine(restoredSteps.Target, "link")).LinkTarget);
                Assert.Equal(64L << 20, (await StatsAsync(restored.VolumeId, restoredSteps.Target)).Total);
            }
            finally
            {
                await restoredSteps.DetachQuietlyAsync();
            }
            var cloneSteps = new NodeSteps(fx, clone, ClusterFixture.Mount(""));
            await cloneSteps.AttachAsync();
            try
            {
                Assert.Equal("overwritten", await File.ReadAllTextAsync(Path.Combine(cloneSteps.Target, "dir", "data.bin")));
            }
            finally
            {
                await cloneSteps.DetachQuietlyAsync();
            }
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            foreach (var id in created) await fx.DeleteAsync(id);
            if (snapshotId is not null) await C.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = snapshotId });
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.Empty((await C.ListSnapshotsAsync(new ListSnapshotsRequest { SourceVolumeId = volume.VolumeId })).Entries);
    }

    [Fact]
    public async Task GetCapacityIsThePoolsGrantPerNode()
    {
        var request = new GetCapacityRequest { Parameters = { ["media"] = "tmpfs" }, AccessibleTopology = new Topology { Segments = { NodeTopology.Of(ClusterFixture.NodeA) } } };
        var before = await C.GetCapacityAsync(request);
        Assert.Equal(ClusterFixture.TmpfsPoolBytes, before.AvailableCapacity);
        Assert.Equal(ClusterFixture.TmpfsPoolBytes, before.MaximumVolumeSize.GetValueOrDefault());
        var volume = await fx.CreateAsync(NewTmpfs(100L << 20));
        try
        {
            Assert.Equal(ClusterFixture.TmpfsPoolBytes - (100L << 20), (await C.GetCapacityAsync(request)).AvailableCapacity);
            request.AccessibleTopology = new Topology { Segments = { NodeTopology.Of(ClusterFixture.NodeB) } };
            Assert.Equal(0, (await C.GetCapacityAsync(request)).AvailableCapacity);
        }
        finally
        {
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    private async Task<(long Total, long Available)> StatsAsync(string volumeId, string path)
    {
        var stats = await fx.A.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volumeId, VolumePath = path });
        var bytes = stats.Usage.Single(u => u.Unit == VolumeUsage.Types.Unit.Bytes);
        return (bytes.Total, bytes.Available);
    }

    private static async Task<IReadOnlyList<SolarCsi.Node.Mounts.MountEntry>> MountsAtAsync(string path) =>
        SolarCsi.Node.Mounts.MountInfoParser.Parse(await File.ReadAllTextAsync("/proc/self/mountinfo")).Where(m => m.MountPoint == path).ToArray();
}
