using System.Security.Cryptography;
using Csi.V1;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Configurations;
using DotNet.Testcontainers.Containers;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Local;
using SolarCsi.Node.Processes;

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

    public const string Image = "solar-csi:test";
    public string? Unavailable { get; private set; }
    public LocalCluster Cluster { get; private set; } = null!;
    public IContainer StorageContainer { get; private set; } = null!;
    internal TestDockerEngine Engine => _engine!;
    /// <summary>The cluster's CA (ca.crt, ca.key), for issuing more node certificates.</summary>
    public string CertificateAuthorityDir => Path.Combine(_root, "tls", "ca");
    public int RegistryPort { get; private set; }

    public async Task InitializeAsync()
    {
        _engine = await TestDockerEngine.StartAsync();
        if (_engine.Unavailable is { } why) { Unavailable = why; return; }
        Environment.SetEnvironmentVariable("DOCKER_API_VERSION", "1.41");
        Environment.SetEnvironmentVariable("TESTCONTAINERS_RYUK_DISABLED", "true");

        var repo = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(BinaryLocator.Find().Controller)!, "../../../../.."));
        const string image = Image;
        // Only the node plugin runs in the storage-host container: the controller and CLI are not linked for it.
        await Runner.RunAsync("env", ["SOLAR_IMAGE_PROJECTS=Node", Path.Combine(repo, "deploy/image/build-local-image.sh"), image, "-H", _engine.Endpoint],
            CancellationToken.None, TimeSpan.FromMinutes(15));

        // Everything that crosses TCP here is mutual TLS, with certificates from `solar certs`' own code: the registry,
        // node-a's and the storage host's heartbeats, the controller's calls into the storage host's agent.
        var tls = Path.Combine(_root, "tls");
        CertificateAuthority.Create(Path.Combine(tls, "ca"), TimeSpan.FromDays(1));
        CertificateAuthority.Issue(Path.Combine(tls, "ca"), ClusterTls.ControllerIdentity, Path.Combine(tls, "controller"), TimeSpan.FromDays(1));
        CertificateAuthority.Issue(Path.Combine(tls, "ca"), ClusterTls.NodeIdentity(ClusterFixture.NodeA), Path.Combine(tls, ClusterFixture.NodeA), TimeSpan.FromDays(1));
        CertificateAuthority.Issue(Path.Combine(tls, "ca"), ClusterTls.NodeIdentity(StorageHost), Path.Combine(tls, StorageHost), TimeSpan.FromDays(1));
        var registryPort = RegistryPort = LocalCluster.FreePort();
        Cluster = await LocalCluster.StartAsync(_root, [ClusterFixture.NodeA], registryEndpoint: $"tcp://127.0.0.1:{registryPort}",
            controllerArgs: ["--tls-dir", Path.Combine(tls, "controller")],
            nodeArgs: new Dictionary<string, IReadOnlyList<string>> { [ClusterFixture.NodeA] = ["--tls-dir", Path.Combine(tls, ClusterFixture.NodeA)] });
        var agentPort = LocalCluster.FreePort();
        StorageContainer = new ContainerBuilder(image)
            .WithDockerEndpoint(_engine.Endpoint)
            // Loopback only: the host's network, never Docker's bridge.
            .WithCreateParameterModifier(p => p.HostConfig!.NetworkMode = "host")
            .WithCommand("--endpoint", "unix:///run/csi.sock", "--node-id", StorageHost, "--state-dir", "/var/lib/solar-csi",
                "--agent-endpoint", $"tcp://127.0.0.1:{agentPort}", "--controller-endpoint", $"tcp://127.0.0.1:{registryPort}",
                "--heartbeat-seconds", "1", "--file-pool-capacity", "64Gi", "--nbd-address", "127.0.0.1", "--nbd-port-range", "21600-21699",
                "--tls-dir", "/tls")
            .WithBindMount(Path.Combine(tls, StorageHost), "/tls", AccessMode.ReadOnly)
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

}

public sealed partial class RemoteStorageHostTests(RemoteStorageHostFixture fx, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<RemoteStorageHostFixture>
{
    private async Task<(Volume Volume, NodeSteps Steps)> NewRemoteVolumeAsync(VolumeCapability capability, long bytes)
    {
        var volume = (await fx.Cluster.Controller.Controller.CreateVolumeAsync(new CreateVolumeRequest
        {
            Name = "remote-" + Guid.NewGuid().ToString("N"), CapacityRange = new CapacityRange { RequiredBytes = bytes },
            VolumeCapabilities = { capability }, Parameters = { ["media"] = "nbd" },
        })).Volume;
        Assert.Equal(RemoteStorageHostFixture.StorageHost, volume.VolumeId.Split('~')[2]);
        return (volume, new NodeSteps(fx.Cluster, volume, capability));
    }

    private async Task CleanUpAsync(Volume volume, NodeSteps steps)
    {
        await steps.DetachQuietlyAsync();
        await fx.Cluster.Controller.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [SkippableFact]
    public async Task VolumeOnAStorageHostInAContainerServesANodeOnThisMachine()
    {
        Skip.If(fx.Unavailable is not null, $"no Docker engine: {fx.Unavailable}");
        var (volume, steps) = await NewRemoteVolumeAsync(ClusterFixture.Mount(), 128 << 20);
        var payload = RandomNumberGenerator.GetBytes(32 << 20);
        try
        {
            await steps.ControllerPublishAsync();
            // Kubernetes keeps publish_context in the VolumeAttachment's status: the key is there only sealed to node-a.
            Assert.False(steps.PublishContext.ContainsKey(SolarCsi.Node.Nbd.NbdConnection.PskKey));
            Assert.StartsWith("v1.", steps.PublishContext[SolarCsi.Node.Nbd.NbdConnection.SealedPskKey]);
            await steps.AttachAsync();
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "data.bin"), payload);
            await steps.UnpublishAsync();
            await steps.UnstageAsync();

            // The bytes are in the container's filesystem, not on this machine.
            var name = volume.VolumeId.Split('~')[3];
            var inContainer = await fx.StorageContainer.ExecAsync(["sh", "-c", $"exec cp /var/lib/solar-csi/pools/nbd/default/volumes/{name}.img /dev/null"]);
            Assert.Equal(0, inContainer.ExitCode);
            Assert.Empty(Directory.EnumerateFiles(fx.Cluster.Root, name + ".img", SearchOption.AllDirectories));

            await steps.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"))));
        }
        finally
        {
            await CleanUpAsync(volume, steps);
        }
    }

    [SkippableFact]
    public async Task StorageHostStoppedMidWriteFailsFastAndComesBack()
    {
        Skip.If(fx.Unavailable is not null, $"no Docker engine: {fx.Unavailable}");
        // A filesystem: buffered raw-block writes through nbdfuse do not report the failure to fsync (see docs).
        var (volume, steps) = await NewRemoteVolumeAsync(ClusterFixture.Mount(), 64 << 20);
        var payload = RandomNumberGenerator.GetBytes(8 << 20);
        try
        {
            await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            await using (var file = new FileStream(Path.Combine(steps.Target, "before.bin"), FileMode.Create, FileAccess.Write))
            {
                await file.WriteAsync(payload);
                file.Flush(flushToDisk: true);
            }

            await fx.StorageContainer.StopAsync();
            Assert.True(await Expect.WritesFailWithinAsync(TimeSpan.FromSeconds(30), () => NbdConformanceTests.WriteFileAsync(steps, "after.bin")),
                "writes kept succeeding with the storage host down");
            var stats = await steps.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = steps.Target });
            Assert.True(stats.VolumeCondition.Abnormal);

            using (var start = new CancellationTokenSource(TimeSpan.FromSeconds(90))) await fx.StorageContainer.StartAsync(start.Token);
            await fx.Cluster.WaitForAgentAsync(RemoteStorageHostFixture.StorageHost);
            // kubelet restarts the pod: unpublish, stage again over the broken attachment, publish.
            await steps.UnpublishAsync();
            await steps.StageAsync();
            await steps.PublishAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "before.bin"))));
        }
        finally
        {
            await CleanUpAsync(volume, steps);
        }
    }
}
