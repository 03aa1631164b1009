using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Processes;

namespace SolarCsi.SanityTests;

/// <summary>
/// ControllerModifyVolume (VolumeAttributesClass): an NBD volume's bandwidth limit changes while a node has it
/// attached and writing, without restarting its export. How fast the limit makes it is measured in bench/, not here.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ModifyVolumeTests(ClusterFixture fx)
{
    [Fact]
    public async Task TheBandwidthLimitChangesOnALiveAttachedVolume()
    {
        var capability = ClusterFixture.Mount();
        var request = ClusterFixture.NewVolumeOf("nbd", 64 << 20, capability);
        request.MutableParameters["bandwidthLimit"] = "8Mi";
        var volume = await fx.CreateAsync(request);
        var steps = new NodeSteps(fx, volume, capability, fx.B);
        var host = fx.Cluster.Nodes.Single(n => n.NodeId == StorageId.ParseVolume(volume.VolumeId).Node);
        var export = Path.Combine(host.Directory, "state", "exports", volume.VolumeId);
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
    public async Task WhatCannotBeModifiedIsRefusedAndChangesNothing()
    {
        var nbd = await fx.CreateAsync(ClusterFixture.NewVolumeOf("nbd", 16 << 20, ClusterFixture.Mount()));
        var file = await fx.CreateAsync(ClusterFixture.NewVolume(16 << 20));
        try
        {
            async Task ModifyAsync(StatusCode code, string volumeId, params (string Key, string Value)[] parameters)
            {
                var modify = new ControllerModifyVolumeRequest { VolumeId = volumeId };
                foreach (var (key, value) in parameters) modify.MutableParameters[key] = value;
                await Expect.Code(code, async () => await fx.Controller.ControllerModifyVolumeAsync(modify));
            }
            await ModifyAsync(StatusCode.InvalidArgument, nbd.VolumeId);
            await ModifyAsync(StatusCode.InvalidArgument, "", ("bandwidthLimit", "8Mi"));
            await ModifyAsync(StatusCode.InvalidArgument, nbd.VolumeId, ("iopsLimit", "100"));
            await ModifyAsync(StatusCode.InvalidArgument, nbd.VolumeId, ("bandwidthLimit", "fast"));
            await ModifyAsync(StatusCode.InvalidArgument, nbd.VolumeId, ("bandwidthLimit", "1"));
            await ModifyAsync(StatusCode.InvalidArgument, file.VolumeId, ("bandwidthLimit", "8Mi"));
            await ModifyAsync(StatusCode.NotFound, nbd.VolumeId.Replace("~v", "~v0").Remove(nbd.VolumeId.Length), ("bandwidthLimit", "8Mi"));
            var create = ClusterFixture.NewVolume(16 << 20);
            create.MutableParameters["bandwidthLimit"] = "8Mi";
            await Expect.Code(StatusCode.InvalidArgument, async () => await fx.Controller.CreateVolumeAsync(create));
        }
        finally
        {
            await fx.DeleteAsync(nbd.VolumeId);
            await fx.DeleteAsync(file.VolumeId);
        }
    }
}
