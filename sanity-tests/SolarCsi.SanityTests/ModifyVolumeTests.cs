using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Node.Processes;

namespace SolarCsi.SanityTests;

/// <summary>
/// ControllerModifyVolume (VolumeAttributesClass): an NBD volume's bandwidth and request-rate limits change while a
/// node has it attached and writing, without restarting its export. How fast the volume is is measured in bench/;
/// here only that a limit holds (a lower bound on time no machine can beat) and that lifting it takes effect.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ModifyVolumeTests(ClusterFixture fx)
{
    [Fact]
    public async Task TheBandwidthLimitChangesOnALiveAttachedVolume()
    {
        var (volume, steps, export) = await CreateLimitedAsync(ClusterFixture.Mount(), 64 << 20, "bandwidthLimit", "8Mi");
        try
        {
            await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            Assert.Equal((8L << 20) * 8, long.Parse(await File.ReadAllTextAsync(Path.Combine(export, "rate"))));
            var pid = Pid.Read(Path.Combine(export, "nbdkit.pid"))!.Value;
            var argv = Pid.CommandLine(pid)!;
            Assert.Contains("--filter=rate", argv);
            Assert.Contains("rate-file=" + Path.Combine(export, "rate"), argv);
            var before = RandomNumberGenerator.GetBytes(1 << 20);
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "before.bin"), before);

            await fx.Controller.ControllerModifyVolumeAsync(new ControllerModifyVolumeRequest
            {
                VolumeId = volume.VolumeId, MutableParameters = { ["bandwidthLimit"] = "unlimited" },
            });
            Assert.Equal(1L << 50, long.Parse(await File.ReadAllTextAsync(Path.Combine(export, "rate"))));
            // Same server process: the attached node was never cut off, and it keeps working.
            Assert.Equal(pid, Pid.Read(Path.Combine(export, "nbdkit.pid")));
            var after = RandomNumberGenerator.GetBytes(4 << 20);
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "after.bin"), after);
            Assert.Equal(SHA256.HashData(before), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "before.bin"))));

            await fx.Controller.ControllerModifyVolumeAsync(new ControllerModifyVolumeRequest
            {
                VolumeId = volume.VolumeId, MutableParameters = { ["bandwidthLimit"] = "32Mi" },
            });
            // The limit belongs to the volume: an export started again (re-publish) comes up with it.
            await steps.DetachQuietlyAsync();
            await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            Assert.Equal((32L << 20) * 8, long.Parse(await File.ReadAllTextAsync(Path.Combine(export, "rate"))));
            Assert.Equal(SHA256.HashData(after), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "after.bin"))));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [Fact]
    public async Task TheRequestRateLimitHoldsAndIsLiftedOnALiveAttachedVolume()
    {
        var (volume, steps, export) = await CreateLimitedAsync(ClusterFixture.Block(), 16 << 20, "iopsLimit", "10");
        try
        {
            await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            var pid = Pid.Read(Path.Combine(export, "nbdkit.pid"))!.Value;
            Assert.Contains("iops-file=" + Path.Combine(export, "iops"), Pid.CommandLine(pid)!);
            Assert.Equal("10", (await File.ReadAllTextAsync(Path.Combine(export, "iops"))).Trim());

            // 30 direct 4 KiB reads are 30 NBD requests: at 10 per second they cannot take less than 2.9 s.
            var limited = ReadDirect(steps.Target, 30);
            Assert.True(limited >= TimeSpan.FromSeconds(2.5), $"30 requests at 10/s took {limited.TotalSeconds:0.00} s");

            await fx.Controller.ControllerModifyVolumeAsync(new ControllerModifyVolumeRequest
            {
                VolumeId = volume.VolumeId, MutableParameters = { ["iopsLimit"] = "unlimited" },
            });
            Assert.Equal("0", (await File.ReadAllTextAsync(Path.Combine(export, "iops"))).Trim());
            await Task.Delay(TimeSpan.FromSeconds(1.2)); // the filter re-reads its file at most once a second
            ReadDirect(steps.Target, 1);
            var unlimited = ReadDirect(steps.Target, 30);
            Assert.True(unlimited < limited / 2, $"after lifting the limit 30 requests took {unlimited.TotalSeconds:0.00} s (limited: {limited.TotalSeconds:0.00} s)");
            // Same server process: the attached node was never cut off.
            Assert.Equal(pid, Pid.Read(Path.Combine(export, "nbdkit.pid")));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    /// <summary>An NBD volume created with one limit, to be attached on node-b; the export lives on its storage host.</summary>
    private async Task<(Volume Volume, NodeSteps Steps, string Export)> CreateLimitedAsync(VolumeCapability capability, long bytes, string key, string value)
    {
        var request = ClusterFixture.NewVolumeOf("nbd", bytes, capability);
        request.MutableParameters[key] = value;
        var volume = await fx.CreateAsync(request);
        return (volume, new NodeSteps(fx, volume, capability, fx.B), fx.ExportDirOf(volume.VolumeId));
    }

    private static TimeSpan ReadDirect(string device, int requests)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        HostCommand.Run("dd", $"if={device}", "of=/dev/null", "bs=4096", $"count={requests}", "iflag=direct", "status=none");
        return clock.Elapsed;
    }

    [Fact]
    public async Task WhatCannotBeModifiedIsRefusedAndChangesNothing()
    {
        var limited = ClusterFixture.NewVolumeOf("nbd", 16 << 20, ClusterFixture.Mount());
        limited.MutableParameters["bandwidthLimit"] = "64Mi";
        var nbd = await fx.CreateAsync(limited);
        var file = await fx.CreateAsync(ClusterFixture.NewVolume(16 << 20));
        var recordBefore = await File.ReadAllTextAsync(fx.RecordOf(nbd.VolumeId));
        Assert.Contains("67108864", recordBefore);
        try
        {
            async Task ModifyAsync(StatusCode code, string volumeId, params (string Key, string Value)[] parameters)
            {
                var modify = new ControllerModifyVolumeRequest { VolumeId = volumeId };
                foreach (var (key, value) in parameters) modify.MutableParameters[key] = value;
                if (code == StatusCode.OK) await fx.Controller.ControllerModifyVolumeAsync(modify);
                else await Expect.Code(code, async () => await fx.Controller.ControllerModifyVolumeAsync(modify));
            }
            // An empty set (a VolumeAttributesClass without parameters) is no change, not an error; on a volume that
            // does not exist it is still NOT_FOUND.
            await ModifyAsync(StatusCode.OK, nbd.VolumeId);
            await ModifyAsync(StatusCode.OK, file.VolumeId);
            await ModifyAsync(StatusCode.NotFound, nbd.VolumeId.Replace("~v", "~v0").Remove(nbd.VolumeId.Length));
            await ModifyAsync(StatusCode.InvalidArgument, "", ("bandwidthLimit", "8Mi"));
            await ModifyAsync(StatusCode.InvalidArgument, nbd.VolumeId, ("iops", "100"));
            await ModifyAsync(StatusCode.InvalidArgument, nbd.VolumeId, ("iopsLimit", "lots"));
            await ModifyAsync(StatusCode.InvalidArgument, nbd.VolumeId, ("iopsLimit", "0"));
            await ModifyAsync(StatusCode.InvalidArgument, nbd.VolumeId, ("bandwidthLimit", "fast"));
            await ModifyAsync(StatusCode.InvalidArgument, nbd.VolumeId, ("bandwidthLimit", "1"));
            await ModifyAsync(StatusCode.InvalidArgument, file.VolumeId, ("bandwidthLimit", "8Mi"));
            await ModifyAsync(StatusCode.NotFound, nbd.VolumeId.Replace("~v", "~v0").Remove(nbd.VolumeId.Length), ("bandwidthLimit", "8Mi"));
            var create = ClusterFixture.NewVolume(16 << 20);
            create.MutableParameters["bandwidthLimit"] = "8Mi";
            await Expect.Code(StatusCode.InvalidArgument, async () => await fx.Controller.CreateVolumeAsync(create));
            Assert.Equal(recordBefore, await File.ReadAllTextAsync(fx.RecordOf(nbd.VolumeId)));
        }
        finally
        {
            await fx.DeleteAsync(nbd.VolumeId);
            await fx.DeleteAsync(file.VolumeId);
        }
    }
}
