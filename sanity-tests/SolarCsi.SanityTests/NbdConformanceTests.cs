using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Local;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Processes;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.SanityTests;

/// <summary>
/// Remote block storage: real nbdkit exports on 127.0.0.1, attached by the node plugins through nbdfuse and loop
/// devices (or the kernel's nbd where the module exists), with real filesystems and real bytes.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class NbdConformanceTests(ClusterFixture fx)
{
    private static readonly IProcessRunner Runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);

    private static CreateVolumeRequest NbdVolume(VolumeCapability capability, long bytes = 128 << 20) => ClusterFixture.NewVolumeOf("nbd", bytes, capability);

    /// <summary>The node that does not hold the volume, so the data really crosses the network.</summary>
    private (NodePlugin Remote, NodePlugin Other) Consumers(Volume volume)
    {
        var remote = fx.ConsumerAcross(volume);
        return (remote, remote == fx.A ? fx.B : fx.A);
    }

    [Fact]
    public async Task NbdVolumesAreReachableFromEveryNode()
    {
        var volume = await fx.CreateAsync(NbdVolume(ClusterFixture.Mount()));
        try
        {
            Assert.StartsWith("nbd~", volume.VolumeId);
            Assert.Empty(volume.AccessibleTopology);
        }
        finally
        {
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Theory]
    [InlineData("ext4")]
    [InlineData("xfs")]
    [InlineData("block")]
    public async Task SingleWriterHandsOffBetweenNodesWithTheDataIntact(string kind)
    {
        var capability = kind == "block" ? ClusterFixture.Block() : ClusterFixture.Mount(kind);
        // mkfs.xfs wants at least 300 MiB.
        var volume = await fx.CreateAsync(NbdVolume(capability, kind == "xfs" ? 320 << 20 : 128 << 20));
        var (remote, other) = Consumers(volume);
        var first = new NodeSteps(fx, volume, capability, remote);
        var second = new NodeSteps(fx, volume, capability, other);
        var payload = RandomNumberGenerator.GetBytes(64 << 20);
        try
        {
            await first.ControllerPublishAsync();
            var connection = fx.Cluster.ConnectionOf(volume.VolumeId, first.PublishContext);
            Assert.Equal(remote.NodeId, connection.Identity);
            Assert.False(connection.ReadOnly);
            await first.AttachAsync();
            await WriteAsync(first, payload);

            // Nobody else gets in: not through the controller, not with a made-up key, not without TLS.
            await Expect.Code(StatusCode.FailedPrecondition, async () => await second.ControllerPublishAsync());
            Assert.False(await CanReadExportAsync(connection with { Identity = other.NodeId, Key = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)) }));
            Assert.False(await CanReadWithoutTlsAsync(connection));
            Assert.True(await CanReadExportAsync(connection));

            await first.UnpublishAsync();
            await first.UnstageAsync();
            await first.ControllerUnpublishAsync();
            // The old holder's key no longer opens the export: it was fenced, not just asked to leave.
            Assert.False(await CanReadExportAsync(connection));
            Assert.DoesNotContain(fx.Cluster.HelperProcesses(), pid => Pid.CommandLine(pid)?.Any(a => a.Contains(remote.Directory + "/", StringComparison.Ordinal)) == true);

            await second.ControllerPublishAsync();
            await second.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await ReadAsync(second, payload.Length)));
        }
        finally
        {
            await first.DetachQuietlyAsync();
            await second.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty, (await fx.Cluster.FindLeftoversAsync()).ToString());
    }

    [Fact]
    public async Task UnpublishingAWriterCutsItsLiveConnections()
    {
        var capability = ClusterFixture.Block();
        var volume = await fx.CreateAsync(NbdVolume(capability, 32 << 20));
        var (remote, _) = Consumers(volume);
        var writer = new NodeSteps(fx, volume, capability, remote);
        try
        {
            await writer.ControllerPublishAsync();
            await writer.AttachAsync();
            await WriteAsync(writer, new byte[1 << 20]);
            // The CO gives up on the node (kubelet dead) and moves the volume: the export must drop the old client.
            await writer.ControllerUnpublishAsync();
            Assert.True(await Expect.WritesFailWithinAsync(TimeSpan.FromSeconds(30), () => WriteAsync(writer, RandomNumberGenerator.GetBytes(1 << 20))),
                "writes through a revoked attachment kept succeeding");
        }
        finally
        {
            await writer.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task MultiReadServesManyNodesReadOnly()
    {
        var writerCapability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(NbdVolume(writerCapability));
        var (remote, other) = Consumers(volume);
        var readerCapability = ClusterFixture.Mount(mode: AccessMode.MultiNodeReaderOnly);
        var writer = new NodeSteps(fx, volume, writerCapability, remote);
        var readers = new[] { new NodeSteps(fx, volume, readerCapability, remote), new NodeSteps(fx, volume, readerCapability, other) };
        var payload = RandomNumberGenerator.GetBytes(8 << 20);
        try
        {
            await writer.ControllerPublishAsync();
            await writer.AttachAsync();
            await File.WriteAllBytesAsync(Path.Combine(writer.Target, "shared.bin"), payload);
            await writer.DetachQuietlyAsync();

            foreach (var reader in readers)
            {
                await reader.ControllerPublishAsync(readOnly: true);
                Assert.True(fx.Cluster.ConnectionOf(volume.VolumeId, reader.PublishContext).ReadOnly);
                await reader.AttachAsync(readOnly: true);
            }
            var reads = await Task.WhenAll(readers.Select(r => File.ReadAllBytesAsync(Path.Combine(r.Target, "shared.bin"))));
            Assert.All(reads, r => Assert.Equal(SHA256.HashData(payload), SHA256.HashData(r)));
            foreach (var reader in readers)
                await Assert.ThrowsAnyAsync<IOException>(() => File.WriteAllTextAsync(Path.Combine(reader.Target, "nope"), "x"));
            // A node that reads cannot turn itself into a writer while it holds the volume.
            await Expect.Code(StatusCode.AlreadyExists, async () => await new NodeSteps(fx, volume, writerCapability, other).ControllerPublishAsync());
            // The export itself refuses writes, whatever a node tries.
            Assert.False(await CanWriteExportAsync(fx.Cluster.ConnectionOf(volume.VolumeId, readers[1].PublishContext)));
        }
        finally
        {
            foreach (var reader in readers) await reader.DetachQuietlyAsync();
            await writer.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task MultiReadRawBlockServesTwoNodes()
    {
        var writerCapability = ClusterFixture.Block();
        var volume = await fx.CreateAsync(NbdVolume(writerCapability, 32 << 20));
        var (remote, other) = Consumers(volume);
        var readerCapability = ClusterFixture.Block(AccessMode.MultiNodeReaderOnly);
        var writer = new NodeSteps(fx, volume, writerCapability, remote);
        var readers = new[] { new NodeSteps(fx, volume, readerCapability, remote), new NodeSteps(fx, volume, readerCapability, other) };
        var payload = RandomNumberGenerator.GetBytes(4 << 20);
        try
        {
            await writer.ControllerPublishAsync();
            await writer.AttachAsync();
            await WriteAsync(writer, payload);
            await writer.DetachQuietlyAsync();
            foreach (var reader in readers)
            {
                await reader.ControllerPublishAsync(readOnly: true);
                await reader.AttachAsync(readOnly: true);
            }
            foreach (var reader in readers)
            {
                Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await ReadAsync(reader, payload.Length)));
                await Assert.ThrowsAnyAsync<Exception>(async () =>
                {
                    await using var device = new FileStream(reader.Target, FileMode.Open, FileAccess.Write);
                    await device.WriteAsync(new byte[4096]);
                    device.Flush(flushToDisk: true);
                });
            }
        }
        finally
        {
            foreach (var reader in readers) await reader.DetachQuietlyAsync();
            await writer.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task StorageHostFailureSurfacesFastAndAReStageRecovers()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(NbdVolume(capability));
        var (remote, _) = Consumers(volume);
        var host = fx.Cluster.Nodes.Single(n => n.NodeId == volume.VolumeId.Split('~')[2]);
        var steps = new NodeSteps(fx, volume, capability, remote);
        var before = RandomNumberGenerator.GetBytes(4 << 20);
        try
        {
            await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            await WriteAsync(steps, before);

            // The storage host's NBD server dies mid-write.
            var pidFile = Path.Combine(fx.ExportDirOf(volume.VolumeId), "nbdkit.pid");
            await Pid.StopAsync(Pid.Read(pidFile)!.Value, kill: true, TimeSpan.FromSeconds(5), CancellationToken.None);
            Assert.True(await Expect.WritesFailWithinAsync(TimeSpan.FromSeconds(30), () => WriteFileAsync(steps, "after.bin")),
                "writes kept succeeding with the NBD server gone");

            // The storage host starts the export again by itself (its periodic pass: a dead server, a restarted
            // data-plane pod), and the controller's view of the volume is normal again. The attachment stays broken —
            // its client's connection went with the old server, whatever now listens on the port — and says so.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((await fx.Controller.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId })).Status.VolumeCondition.Abnormal)
            {
                Assert.True(DateTime.UtcNow < deadline, "the storage host did not restore its export");
                await Task.Delay(200);
            }
            var stats = await steps.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = steps.Target });
            Assert.True(stats.VolumeCondition.Abnormal, stats.VolumeCondition.Message);
            Assert.Contains("connection to the NBD server", stats.VolumeCondition.Message);

            // A restarted storage host adopts the running export.
            await fx.Cluster.RestartNodeAsync(host.NodeId, crash: true);
            Assert.False((await fx.Controller.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId })).Status.VolumeCondition.Abnormal);

            // kubelet restarts the pod: unpublish, then stage again over the broken attachment, then publish.
            await steps.UnpublishAsync();
            await steps.Node.NodeStageVolumeAsync(steps.StageRequest());
            await steps.PublishAsync();
            Assert.Equal(SHA256.HashData(before), SHA256.HashData(await ReadAsync(steps, before.Length)));
            stats = await steps.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = steps.Target });
            Assert.False(stats.VolumeCondition.Abnormal, stats.VolumeCondition.Message);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task StageWithoutAPublishContextIsRefused()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(NbdVolume(capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            await Expect.Code(StatusCode.InvalidArgument, async () => await steps.StageAsync());
            steps.PublishContext[NbdConnection.HostKey] = "evil host; rm -rf /";
            steps.PublishContext[NbdConnection.PortKey] = "10809";
            steps.PublishContext[NbdConnection.IdentityKey] = steps.NodeId;
            steps.PublishContext[NbdConnection.PskKey] = new string('a', 64);
            steps.PublishContext[NbdConnection.ReadOnlyKey] = "false";
            await Expect.Code(StatusCode.InvalidArgument, async () => await steps.StageAsync());
            Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    /// <summary>Writes 1 MiB to a file on the volume and syncs it, so a dead backend must show.</summary>
    internal static async Task WriteFileAsync(NodeSteps steps, string name)
    {
        await using var file = new FileStream(Path.Combine(steps.Target, name), FileMode.Create, FileAccess.Write);
        await file.WriteAsync(RandomNumberGenerator.GetBytes(1 << 20));
        file.Flush(flushToDisk: true);
    }

    private static async Task WriteAsync(NodeSteps steps, byte[] payload)
    {
        if (steps.Block)
        {
            await using var device = new FileStream(steps.Target, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1 << 20, FileOptions.WriteThrough);
            await device.WriteAsync(payload);
            device.Flush(flushToDisk: true);
        }
        else
        {
            await using var file = new FileStream(Path.Combine(steps.Target, "data.bin"), FileMode.Create, FileAccess.Write);
            await file.WriteAsync(payload);
            file.Flush(flushToDisk: true);
        }
    }

    private static async Task<byte[]> ReadAsync(NodeSteps steps, int length)
    {
        if (!steps.Block) return await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"));
        var buffer = new byte[length];
        await using var device = new FileStream(steps.Target, FileMode.Open, FileAccess.Read);
        await device.ReadExactlyAsync(buffer);
        return buffer;
    }

    private static async Task<bool> CanReadExportAsync(NbdConnection connection)
    {
        using var dir = new TempPsk(connection);
        var result = await Runner.RunAsync("nbdinfo", ["--size", $"nbds://{connection.Identity}@{connection.Host}:{connection.Port}/?tls-psk-file={dir.Path}"],
            CancellationToken.None, TimeSpan.FromSeconds(20), okExitCodes: [0, 1]);
        return result.ExitCode == 0;
    }

    private static async Task<bool> CanReadWithoutTlsAsync(NbdConnection connection)
    {
        var result = await Runner.RunAsync("nbdinfo", ["--size", $"nbd://{connection.Host}:{connection.Port}/"], CancellationToken.None,
            TimeSpan.FromSeconds(20), okExitCodes: [0, 1]);
        return result.ExitCode == 0;
    }

    /// <summary>Tries to write one sector straight to the export with nbdcopy, bypassing the node.</summary>
    private static async Task<bool> CanWriteExportAsync(NbdConnection connection)
    {
        using var psk = new TempPsk(connection);
        var source = Path.Combine(Path.GetDirectoryName(psk.Path)!, "sector");
        await File.WriteAllBytesAsync(source, new byte[512]);
        var result = await Runner.RunAsync("nbdcopy", ["--destination-is-zero", "--no-extents", source,
                $"nbds://{connection.Identity}@{connection.Host}:{connection.Port}/?tls-psk-file={psk.Path}"],
            CancellationToken.None, TimeSpan.FromSeconds(20), okExitCodes: [0, 1]);
        return result.ExitCode == 0;
    }

    private sealed class TempPsk : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("solar-psk-").FullName;

        public TempPsk(NbdConnection connection)
        {
            Path = System.IO.Path.Combine(_dir, "client.psk");
            File.WriteAllText(Path, connection.PskLine + "\n");
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        public string Path { get; }
        public void Dispose() => Directory.Delete(_dir, recursive: true);
    }
}
