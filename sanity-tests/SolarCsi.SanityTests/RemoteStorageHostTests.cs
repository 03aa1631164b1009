using System.Security.Cryptography;
using Csi.V1;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Local;
using SolarCsi.Core.Processes;

namespace SolarCsi.SanityTests;

/// <summary>
/// The storage host in a container: its pools live on the container's own filesystem, so the volume's bytes are
/// really somewhere else; the controller and the consuming node plugin run on this machine. Loopback only (host
/// networking, no bridge). Skipped, with the reason, where no Docker engine can run.
/// </summary>
public sealed class RemoteStorageHostFixture : IAsyncLifetime
{
    public const string StorageHost = "storage-1";
    private static readonly IProcessRunner Runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
    private readonly string _root = Directory.CreateTempSubdirectory("solar-remote-").FullName;
    private TestDockerEngine? _engine;

    public string? Unavailable { get; private set; }
    public LocalCluster Cluster { get; private set; } = null!;
    public IContainer StorageContainer { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _engine = await TestDockerEngine.StartAsync();
        if (_engine.Unavailable is { } why) { Unavailable = why; return; }
        Environment.SetEnvironmentVariable("DOCKER_API_VERSION", "1.41");
        Environment.SetEnvironmentVariable("TESTCONTAINERS_RYUK_DISABLED", "true");

        var repo = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(BinaryLocator.Find().Controller)!, "../../../../.."));
        const string image = "solar-csi:test";
        await Runner.RunAsync(Path.Combine(repo, "deploy/image/build-local-image.sh"), [image, "-H", _engine.Endpoint], CancellationToken.None,
            TimeSpan.FromMinutes(10));

        var registryPort = FreePort();
        Cluster = await LocalCluster.StartAsync(_root, [ClusterFixture.NodeA], registryEndpoint: $"tcp://127.0.0.1:{registryPort}");
        var agentPort = FreePort();
        StorageContainer = new ContainerBuilder(image)
            .WithDockerEndpoint(_engine.Endpoint)
            // Loopback only: the host's network, never Docker's bridge.
            .WithCreateParameterModifier(p => p.HostConfig!.NetworkMode = "host")
            .WithCommand("--endpoint", "unix:///run/csi.sock", "--node-id", StorageHost, "--state-dir", "/var/lib/solar-csi",
                "--agent-endpoint", $"tcp://127.0.0.1:{agentPort}", "--controller-endpoint", $"tcp://127.0.0.1:{registryPort}",
                "--heartbeat-seconds", "1", "--file-pool-capacity", "64Gi", "--nbd-address", "127.0.0.1", "--nbd-port-range", "21600-21699")
            .WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged("serving CSI"))
            .Build();
        using var start = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await StorageContainer.StartAsync(start.Token);
        await Cluster.WaitForAgentAsync(StorageHost);
    }

    public async Task DisposeAsync()
    {
        var keep = Environment.GetEnvironmentVariable("SOLAR_KEEP_LOGS") == "1";
        if (StorageContainer is not null)
        {
            var (stdout, stderr) = await StorageContainer.GetLogsAsync();
            Directory.CreateDirectory(Path.Combine(_root, "logs"));
            await File.WriteAllTextAsync(Path.Combine(_root, "logs", StorageHost + ".log"), stdout + stderr);
            await StorageContainer.DisposeAsync();
        }
        if (Cluster is not null) await Cluster.DisposeAsync();
        if (_engine is not null) await _engine.DisposeAsync();
        if (!keep) Directory.Delete(_root, recursive: true);
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }
}

public sealed class RemoteStorageHostTests(RemoteStorageHostFixture fx) : IClassFixture<RemoteStorageHostFixture>
{
    [SkippableFact]
    public async Task VolumeOnAStorageHostInAContainerServesANodeOnThisMachine()
    {
        Skip.If(fx.Unavailable is not null, $"no Docker engine: {fx.Unavailable}");
        var controller = fx.Cluster.Controller.Controller;
        var node = fx.Cluster.Nodes[0];
        var capability = ClusterFixture.Mount();
        var volume = (await controller.CreateVolumeAsync(new CreateVolumeRequest
        {
            Name = "remote-" + Guid.NewGuid().ToString("N"), CapacityRange = new CapacityRange { RequiredBytes = 128 << 20 },
            VolumeCapabilities = { capability }, Parameters = { ["media"] = "nbd" },
        })).Volume;
        Assert.Equal(RemoteStorageHostFixture.StorageHost, volume.VolumeId.Split('~')[2]);
        var staging = Path.Combine(fx.Cluster.KubeletDir, "staging", "v");
        var target = Path.Combine(fx.Cluster.KubeletDir, "pods", "p", "mount");
        var payload = RandomNumberGenerator.GetBytes(32 << 20);
        try
        {
            var published = await controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = node.NodeId, VolumeCapability = capability,
            });
            Directory.CreateDirectory(staging);
            await node.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, VolumeCapability = capability, PublishContext = { published.PublishContext },
            });
            await node.Node.NodePublishVolumeAsync(new NodePublishVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, TargetPath = target, VolumeCapability = capability,
                PublishContext = { published.PublishContext },
            });
            await File.WriteAllBytesAsync(Path.Combine(target, "data.bin"), payload);
            await node.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = target });
            await node.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging });

            // The bytes are in the container's filesystem, not on this machine.
            var name = volume.VolumeId.Split('~')[3];
            var inContainer = await fx.StorageContainer.ExecAsync(["sh", "-c", $"exec cp /var/lib/solar-csi/pools/nbd/default/volumes/{name}.img /dev/null"]);
            Assert.Equal(0, inContainer.ExitCode);
            Assert.Empty(Directory.EnumerateFiles(fx.Cluster.Root, name + ".img", SearchOption.AllDirectories));

            await node.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, VolumeCapability = capability, PublishContext = { published.PublishContext },
            });
            await node.Node.NodePublishVolumeAsync(new NodePublishVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, TargetPath = target, VolumeCapability = capability,
                PublishContext = { published.PublishContext },
            });
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(target, "data.bin"))));
        }
        finally
        {
            try { await node.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = target }); } catch (Grpc.Core.RpcException) { }
            try { await node.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging }); } catch (Grpc.Core.RpcException) { }
            await controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = node.NodeId });
            await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [SkippableFact]
    public async Task StorageHostStoppedMidWriteFailsFastAndComesBack()
    {
        Skip.If(fx.Unavailable is not null, $"no Docker engine: {fx.Unavailable}");
        var controller = fx.Cluster.Controller.Controller;
        var node = fx.Cluster.Nodes[0];
        // A filesystem: buffered raw-block writes through nbdfuse do not report the failure to fsync (see docs).
        var capability = ClusterFixture.Mount();
        var volume = (await controller.CreateVolumeAsync(new CreateVolumeRequest
        {
            Name = "remote-" + Guid.NewGuid().ToString("N"), CapacityRange = new CapacityRange { RequiredBytes = 64 << 20 },
            VolumeCapabilities = { capability }, Parameters = { ["media"] = "nbd" },
        })).Volume;
        var staging = Path.Combine(fx.Cluster.KubeletDir, "staging", "b");
        var target = Path.Combine(fx.Cluster.KubeletDir, "pods", "q", "mount");
        var payload = RandomNumberGenerator.GetBytes(8 << 20);
        try
        {
            var published = await controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = node.NodeId, VolumeCapability = capability,
            });
            var stage = new NodeStageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging, VolumeCapability = capability, PublishContext = { published.PublishContext } };
            var publish = new NodePublishVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, TargetPath = target, VolumeCapability = capability, PublishContext = { published.PublishContext },
            };
            Directory.CreateDirectory(staging);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            await node.Node.NodeStageVolumeAsync(stage);
            await node.Node.NodePublishVolumeAsync(publish);
            await using (var file = new FileStream(Path.Combine(target, "before.bin"), FileMode.Create, FileAccess.Write))
            {
                await file.WriteAsync(payload);
                file.Flush(flushToDisk: true);
            }

            await fx.StorageContainer.StopAsync();
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var failed = false;
            while (!failed && watch.Elapsed < TimeSpan.FromSeconds(30))
            {
                try
                {
                    await using var file = new FileStream(Path.Combine(target, "after.bin"), FileMode.Create, FileAccess.Write);
                    await file.WriteAsync(RandomNumberGenerator.GetBytes(1 << 20));
                    file.Flush(flushToDisk: true);
                }
                catch (IOException) { failed = true; }
            }
            Assert.True(failed, "writes kept succeeding with the storage host down");
            var stats = await node.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = target });
            Assert.True(stats.VolumeCondition.Abnormal);

            using (var start = new CancellationTokenSource(TimeSpan.FromSeconds(90))) await fx.StorageContainer.StartAsync(start.Token);
            await fx.Cluster.WaitForAgentAsync(RemoteStorageHostFixture.StorageHost);
            await node.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = target });
            await node.Node.NodeStageVolumeAsync(stage);
            await node.Node.NodePublishVolumeAsync(publish);
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(target, "before.bin"))));
        }
        finally
        {
            try { await node.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = target }); } catch (Grpc.Core.RpcException) { }
            try { await node.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging }); } catch (Grpc.Core.RpcException) { }
            await controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = node.NodeId });
            await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }
}
