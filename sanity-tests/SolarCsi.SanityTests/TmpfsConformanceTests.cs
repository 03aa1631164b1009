using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;

namespace SolarCsi.SanityTests;

/// <summary>tmpfs volumes on node-a (512 MiB pool): memory-backed filesystems, placed and accounted like any local media.</summary>
[Collection(ClusterCollection.Name)]
public sealed class TmpfsConformanceTests(ClusterFixture fx)
{
    private Controller.ControllerClient C => fx.Controller;

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

        var volume = await fx.CreateAsync(NewTmpfs(16L << 20));
        try
        {
            await Expect.Code(StatusCode.FailedPrecondition, async () => await C.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "snap-" + Guid.NewGuid().ToString("N"), SourceVolumeId = volume.VolumeId }));
        }
        finally
        {
            await fx.DeleteAsync(volume.VolumeId);
        }
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

    private static async Task<IReadOnlyList<Core.Mounts.MountEntry>> MountsAtAsync(string path) =>
        Core.Mounts.MountInfoParser.Parse(await File.ReadAllTextAsync("/proc/self/mountinfo")).Where(m => m.MountPoint == path).ToArray();
}
