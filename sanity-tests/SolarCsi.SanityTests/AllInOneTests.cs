using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Hosting;
using SolarCsi.Local;
using ServiceType = Csi.V1.PluginCapability.Types.Service.Types.Type;

namespace SolarCsi.SanityTests;

/// <summary>
/// `solar-node --mode all-in-one`, the single-node install (and what csi-sanity runs against): one CSI endpoint
/// serves Identity, Controller, GroupController and Node, so a CO that knows one socket gets ControllerPublish's
/// publish_context into NodeStage. The controller's registry and the node's agent API stay on unix sockets: the
/// process listens on no TCP port at all.
/// </summary>
public sealed class AllInOneTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("solar-aio-").FullName;
    private PluginProcess? _plugin;
    private Grpc.Net.Client.GrpcChannel? _channel;

    private string Kubelet => Path.Combine(_root, "kubelet");
    private string State => Path.Combine(_root, "state");
    private string Socket => Path.Combine(_root, "csi.sock");

    public Task InitializeAsync() => Task.CompletedTask;

    private static readonly string[] BaseFlags = ["--mode", "all-in-one", "--node-id", "edge-1", "--file-pool-capacity", "4Gi"];

    private IReadOnlyList<string> Flags(params string[] extra) =>
        [.. BaseFlags, "--endpoint", $"unix://{Socket}", "--state-dir", State, "--allowed-root", Kubelet, "--nbd-port-range", "24800-24809", .. extra];

    private async Task<Grpc.Net.Client.GrpcChannel> StartAsync(IReadOnlyDictionary<string, string>? environment = null)
    {
        _plugin = PluginProcess.Start("all-in-one", BinaryLocator.Find().Node, Flags(), Path.Combine(_root, "plugin.log"), environment);
        _channel = GrpcChannels.Create(GrpcEndpoint.Parse($"unix://{Socket}"));
        var identity = new Identity.IdentityClient(_channel);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            Assert.False(_plugin.HasExited, _plugin.Tail());
            try
            {
                if ((await identity.ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(2))).Ready == true) return _channel;
            }
            catch (RpcException) { }
            Assert.True(DateTime.UtcNow < deadline, "the all-in-one plugin did not become ready:\n" + _plugin.Tail());
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task OneEndpointCarriesAnNbdVolumeFromCreateToDeleteAndNothingListensOnTheNetwork()
    {
        var channel = await StartAsync();
        var identity = new Identity.IdentityClient(channel);
        var controller = new Csi.V1.Controller.ControllerClient(channel);
        var node = new Csi.V1.Node.NodeClient(channel);

        var services = (await identity.GetPluginCapabilitiesAsync(new GetPluginCapabilitiesRequest())).Capabilities
            .Where(c => c.Service is not null).Select(c => c.Service.Type).ToHashSet();
        Assert.Superset(new HashSet<ServiceType> { ServiceType.ControllerService, ServiceType.GroupControllerService, ServiceType.VolumeAccessibilityConstraints }, services);
        await new GroupController.GroupControllerClient(channel).GroupControllerGetCapabilitiesAsync(new GroupControllerGetCapabilitiesRequest());
        var nodeId = (await node.NodeGetInfoAsync(new NodeGetInfoRequest())).NodeId;
        Assert.Equal("edge-1", nodeId);

        // The one place the controller's and the node's halves meet: publish_context. Without ControllerPublish the
        // node cannot find the export; with it, the data path works.
        var capability = ClusterFixture.Mount();
        var volume = (await controller.CreateVolumeAsync(NewVolume("nbd", 32L << 20))).Volume;
        var staging = KubeletPaths.NewStaging(Kubelet);
        var target = KubeletPaths.NewTarget(Kubelet);
        var payload = RandomNumberGenerator.GetBytes(4 << 20);
        try
        {
            var published = await controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = nodeId, VolumeCapability = capability,
            });
            Assert.NotEmpty(published.PublishContext);
            await node.NodeStageVolumeAsync(new NodeStageVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, VolumeCapability = capability,
                PublishContext = { published.PublishContext }, VolumeContext = { volume.VolumeContext },
            });
            await node.NodePublishVolumeAsync(new NodePublishVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, TargetPath = target, VolumeCapability = capability,
                PublishContext = { published.PublishContext }, VolumeContext = { volume.VolumeContext },
            });
            await File.WriteAllBytesAsync(Path.Combine(target, "data.bin"), payload);

            Assert.Empty(ListeningTcpSocketsOf(_plugin!.Id));
            foreach (var socket in new[] { Socket, Path.Combine(State, "agent.sock"), Path.Combine(State, "registry.sock") })
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));

            await node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = target });
            await node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging });
            await controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = nodeId });

            // Attached again from scratch, the bytes are the ones written.
            published = await controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = nodeId, VolumeCapability = capability,
            });
            await node.NodeStageVolumeAsync(new NodeStageVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, VolumeCapability = capability,
                PublishContext = { published.PublishContext }, VolumeContext = { volume.VolumeContext },
            });
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(staging, "data.bin"))));
            await node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging });
            await controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = nodeId });
            await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
            await Expect.Code(StatusCode.NotFound, async () =>
                await controller.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId }));
        }
        finally
        {
            await Quietly(() => node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = target }).ResponseAsync);
            await Quietly(() => node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging }).ResponseAsync);
            await Quietly(() => controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = nodeId }).ResponseAsync);
            await Quietly(() => controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId }).ResponseAsync);
        }
    }

    [Theory]
    [InlineData("--agent-endpoint", "tcp://127.0.0.1:24899", "unix socket")]
    [InlineData("--controller-endpoint", "unix:///tmp/elsewhere.sock", "its own registry")]
    [InlineData("--mode", "everything", "--mode must be")]
    public async Task FlagsThatWouldOpenItToTheNetworkOrMeanNothingStopTheStart(string flag, string value, string reason)
    {
        var plugin = PluginProcess.Start("all-in-one", BinaryLocator.Find().Node, Flags(flag, value), Path.Combine(_root, "refused.log"));
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            try { await plugin.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException) { Assert.Fail("the plugin started anyway:\n" + plugin.Tail()); }
        }
        Assert.Equal(2, plugin.ExitCode);
        Assert.Contains(reason, plugin.Tail());
        Assert.False(File.Exists(Socket));
    }

    [Fact]
    public async Task AMissingHostToolIsNamedWithItsPackageAndItsMediaIsNotOffered()
    {
        // This machine has every tool; the plugin gets a PATH that lacks the NBD server and the NBD client.
        var channel = await StartAsync(new Dictionary<string, string> { ["PATH"] = PathWithout("nbdkit", "nbdfuse") });
        var controller = new Csi.V1.Controller.ControllerClient(channel);
        var node = new Csi.V1.Node.NodeClient(channel);
        Assert.Contains("nbd pool 'default' on node edge-1 needs nbdkit (Debian package nbdkit), not installed: not offered", _plugin!.Tail(200));
        Assert.Contains("NBD volumes cannot be attached on this node (nbdfuse path): missing nbdfuse (Debian package libnbd-bin)", _plugin.Tail(200));

        var capability = ClusterFixture.Mount();
        var refused = await Expect.Code(StatusCode.FailedPrecondition, async () => await controller.CreateVolumeAsync(NewVolume("nbd", 16L << 20)));
        Assert.Contains("nbdkit (Debian package nbdkit)", refused.Status.Detail);
        Assert.Equal(0, (await controller.GetCapacityAsync(new GetCapacityRequest { Parameters = { ["media"] = "nbd" } })).AvailableCapacity);
        Assert.Empty((await controller.ListVolumesAsync(new ListVolumesRequest())).Entries);

        // What needs no missing tool still works: a file volume is created, staged as ext4 and written.
        var volume = (await controller.CreateVolumeAsync(NewVolume("file", 16L << 20))).Volume;
        var staging = KubeletPaths.NewStaging(Kubelet);
        try
        {
            var published = await controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = "edge-1", VolumeCapability = capability,
            });
            await node.NodeStageVolumeAsync(new NodeStageVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, VolumeCapability = capability,
                PublishContext = { published.PublishContext }, VolumeContext = { volume.VolumeContext },
            });
            await File.WriteAllTextAsync(Path.Combine(staging, "ok"), "written");
            await node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging });
        }
        finally
        {
            await Quietly(() => node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging }).ResponseAsync);
            await Quietly(() => controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = "edge-1" }).ResponseAsync);
            await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        }
    }

    [Fact]
    public async Task ANodeWithoutTheNbdClientRefusesToStageBeforeItChangesAnything()
    {
        var channel = await StartAsync(new Dictionary<string, string> { ["PATH"] = PathWithout("nbdfuse") });
        var controller = new Csi.V1.Controller.ControllerClient(channel);
        var node = new Csi.V1.Node.NodeClient(channel);
        var capability = ClusterFixture.Mount();
        var volume = (await controller.CreateVolumeAsync(NewVolume("nbd", 16L << 20))).Volume;
        var staging = KubeletPaths.NewStaging(Kubelet);
        try
        {
            var published = await controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = "edge-1", VolumeCapability = capability,
            });
            var stage = new NodeStageVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, VolumeCapability = capability,
                PublishContext = { published.PublishContext }, VolumeContext = { volume.VolumeContext },
            };
            for (var attempt = 0; attempt < 2; attempt++)
            {
                var refused = await Expect.Code(StatusCode.FailedPrecondition, async () => await node.NodeStageVolumeAsync(stage));
                Assert.Equal("host tool 'nbdfuse' is not installed on this node: install the Debian package 'libnbd-bin'", refused.Status.Detail);
            }
            Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(_root + "/", StringComparison.Ordinal) && !l.Contains("/pools/", StringComparison.Ordinal));
            Assert.False(Directory.Exists(Path.Combine(State, "node", "nbd", volume.VolumeId)), "the stage wrote the volume's NBD key before it refused");
            await node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging });
        }
        finally
        {
            await Quietly(() => controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = "edge-1" }).ResponseAsync);
            await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        }
    }

    private static CreateVolumeRequest NewVolume(string media, long bytes) => new()
    {
        Name = media + "-" + Guid.NewGuid().ToString("N"), VolumeCapabilities = { ClusterFixture.Mount() },
        CapacityRange = new CapacityRange { RequiredBytes = bytes }, Parameters = { ["media"] = media },
    };

    /// <summary>A PATH of links to every program of this machine's PATH but <paramref name="missing"/>.</summary>
    private string PathWithout(params string[] missing)
    {
        var dir = Path.Combine(_root, "bin");
        Directory.CreateDirectory(dir);
        foreach (var source in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Where(Directory.Exists))
        foreach (var program in Directory.EnumerateFiles(source))
        {
            var link = Path.Combine(dir, Path.GetFileName(program));
            if (!missing.Contains(Path.GetFileName(program)) && !File.Exists(link)) File.CreateSymbolicLink(link, program);
        }
        foreach (var program in missing) Assert.False(File.Exists(Path.Combine(dir, program)));
        return dir;
    }

    /// <summary>TCP sockets in LISTEN state that <paramref name="pid"/> holds (matched by socket inode).</summary>
    private static IReadOnlyList<string> ListeningTcpSocketsOf(int pid)
    {
        var inodes = Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd")
            .Select(fd => new FileInfo(fd).LinkTarget)
            .Where(t => t is not null && t.StartsWith("socket:[", StringComparison.Ordinal))
            .Select(t => t!["socket:[".Length..^1]).ToHashSet();
        return new[] { "/proc/net/tcp", "/proc/net/tcp6" }
            .SelectMany(File.ReadLines).Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length > 9 && f[3] == "0A" && inodes.Contains(f[9]))
            .Select(f => f[1]).ToArray();
    }

    private static async Task Quietly(Func<Task> call)
    {
        try { await call(); }
        catch (RpcException) { }
    }

    public async Task DisposeAsync()
    {
        _channel?.Dispose();
        if (_plugin is not null) await _plugin.StopAsync();
        await LocalCluster.RemoveLeftoversAsync(_root);
        Directory.Delete(_root, recursive: true);
    }
}
