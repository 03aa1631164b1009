using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;

namespace SolarCsi.SanityTests;

/// <summary>
/// Whole disks on node-a: loop devices of 64, 96 and 128 MiB (blank), 160 MiB (someone's ext4) and 16 MiB (below
/// the pool's 40 MiB minimum). One volume per disk, the smallest that fits, wiped on delete.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DiskConformanceTests(ClusterFixture fx)
{
    private const long MiB = 1L << 20;
    private Csi.V1.Controller.ControllerClient C => fx.Controller;

    private static CreateVolumeRequest NewDisk(long bytes, VolumeCapability? capability = null, long limit = 0)
    {
        var request = ClusterFixture.NewVolumeOf("disk", bytes, capability ?? ClusterFixture.Mount());
        request.CapacityRange.LimitBytes = limit;
        return request;
    }

    [Fact]
    public async Task AFilesystemVolumeGetsTheSmallestDiskThatFitsAndTheDiskIsWipedOnDelete()
    {
        var request = NewDisk(70 * MiB);
        request.Parameters["mkfsOptions"] = "-L solar-data -m 0";
        var volume = await fx.CreateAsync(request);
        var disk = fx.BlankDisks[1];
        var steps = new NodeSteps(fx, volume, ClusterFixture.Mount());
        var payload = RandomNumberGenerator.GetBytes(8 << 20);
        try
        {
            // Rounded up to the whole 96 MiB disk, and the CO is told so.
            Assert.Equal(96 * MiB, volume.CapacityBytes);
            Assert.Equal(NodeTopology.Of(ClusterFixture.NodeA), volume.AccessibleTopology.Single().Segments);
            // The same request again is the same volume, not a second disk.
            Assert.Equal(volume.VolumeId, (await C.CreateVolumeAsync(request)).Volume.VolumeId);

            await steps.AttachAsync();
            Assert.Contains("LABEL=solar-data", TestDisks.Probe(disk));
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "data.bin"), payload);
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            await steps.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"))));

            var e = await Expect.Code(StatusCode.OutOfRange, async () => await C.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
            {
                VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 200 * MiB },
            }));
            Assert.Contains("cannot grow", e.Status.Detail);
            await Expect.Code(StatusCode.FailedPrecondition, async () => await C.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "snap-" + Guid.NewGuid().ToString("N"), SourceVolumeId = volume.VolumeId }));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.Equal("", TestDisks.Probe(disk));
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [Fact]
    public async Task ARawBlockVolumeMovesBytesThroughTheDisk()
    {
        var volume = await fx.CreateAsync(NewDisk(100 * MiB, ClusterFixture.Block()));
        var steps = new NodeSteps(fx, volume, ClusterFixture.Block());
        var payload = RandomNumberGenerator.GetBytes(4 << 20);
        try
        {
            Assert.Equal(128 * MiB, volume.CapacityBytes);
            await steps.AttachAsync();
            await using (var device = new FileStream(steps.Target, FileMode.Open, FileAccess.ReadWrite))
            {
                device.Position = 8 * MiB;
                await device.WriteAsync(payload);
                device.Flush(flushToDisk: true);
            }
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            await steps.AttachAsync();
            var back = new byte[payload.Length];
            await using (var device = new FileStream(steps.Target, FileMode.Open, FileAccess.Read))
            {
                device.Position = 8 * MiB;
                await device.ReadExactlyAsync(back);
            }
            Assert.Equal(payload, back);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [Fact]
    public async Task ForeignAndSmallDisksAreNeverHandedOutAndLimitsAreHonoured()
    {
        // Only the 160 MiB disk is big enough, and it holds a filesystem we did not make.
        await Expect.Code(StatusCode.ResourceExhausted, async () => await C.CreateVolumeAsync(NewDisk(150 * MiB)));
        // 10 MiB would fit the 16 MiB disk, but that one is below the pool's minimum: the 64 MiB disk it is.
        var small = await fx.CreateAsync(NewDisk(10 * MiB));
        try
        {
            Assert.Equal(64 * MiB, small.CapacityBytes);
            // Now the smallest free disk that fits 50 MiB is 96 MiB, above the limit.
            await Expect.Code(StatusCode.OutOfRange, async () => await C.CreateVolumeAsync(NewDisk(50 * MiB, limit: 80 * MiB)));
        }
        finally
        {
            await fx.DeleteAsync(small.VolumeId);
        }
        Assert.Contains("TYPE=ext4", TestDisks.Probe(fx.ForeignDisk));
    }

    [Fact]
    public async Task GetCapacityCountsFreeBlankDisksAndTheLargestIsTheMaximum()
    {
        var request = new GetCapacityRequest { Parameters = { ["media"] = "disk" }, AccessibleTopology = new Topology { Segments = { NodeTopology.Of(ClusterFixture.NodeA) } } };
        var before = await C.GetCapacityAsync(request);
        Assert.Equal((64 + 96 + 128) * MiB, before.AvailableCapacity);
        Assert.Equal(128 * MiB, before.MaximumVolumeSize.GetValueOrDefault());
        var volume = await fx.CreateAsync(NewDisk(100 * MiB));
        try
        {
            var during = await EventuallyAsync(request, c => c.AvailableCapacity == (64 + 96) * MiB);
            Assert.Equal(96 * MiB, during.MaximumVolumeSize.GetValueOrDefault());
        }
        finally
        {
            await fx.DeleteAsync(volume.VolumeId);
        }
        await EventuallyAsync(request, c => c.AvailableCapacity == (64 + 96 + 128) * MiB);
    }

    [Fact]
    public async Task ADiskSwappedUnderItsNameIsNeitherStagedNorWiped()
    {
        var disk = fx.BlankDisks[0];
        var original = fx.Disks.ImageOf(disk);
        var stranger = fx.Disks.NewImage("stranger", 64 * MiB, fs: "ext4");
        var volume = await fx.CreateAsync(NewDisk(60 * MiB));
        var steps = new NodeSteps(fx, volume, ClusterFixture.Mount());
        try
        {
            fx.Disks.Replace(disk, stranger);
            var e = await Expect.Code(StatusCode.FailedPrecondition, () => steps.StageAsync());
            Assert.Contains("not the disk", e.Status.Detail);
            await fx.DeleteAsync(volume.VolumeId);
            Assert.Contains("TYPE=ext4", TestDisks.Probe(disk));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
            fx.Disks.Replace(disk, original);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    /// <summary>Capacity comes from the agent's last disk scan, refreshed in the background: wait for it to settle.</summary>
    private async Task<GetCapacityResponse> EventuallyAsync(GetCapacityRequest request, Func<GetCapacityResponse, bool> settled)
    {
        GetCapacityResponse last = null!;
        for (var i = 0; i < 100; i++)
        {
            last = await C.GetCapacityAsync(request);
            if (settled(last)) return last;
            await Task.Delay(100);
        }
        Assert.Fail($"capacity never settled; last: {last}");
        return last;
    }
}
