using Csi.V1;

namespace SolarCsi.SanityTests;

/// <summary>The calls kubelet makes, in kubelet's order, for one volume on one node.</summary>
/// <param name="kubeletDir">where this node's kubelet keeps staging and target paths (default: the cluster's).</param>
internal sealed class NodeSteps(SolarCsi.Local.LocalCluster cluster, Volume volume, VolumeCapability capability, SolarCsi.Local.NodePlugin? plugin = null,
    string? kubeletDir = null)
{
    public NodeSteps(ClusterFixture fx, Volume volume, VolumeCapability capability, SolarCsi.Local.NodePlugin? plugin = null)
        : this(fx.Cluster, volume, capability, plugin)
    {
    }

    private readonly SolarCsi.Local.NodePlugin _plugin = plugin ?? cluster.Nodes[0];
    private Csi.V1.Controller.ControllerClient Controller => cluster.Controller.Controller;
    public Csi.V1.Node.NodeClient Node => _plugin.Node;
    public string NodeId => _plugin.NodeId;
    public string VolumeId => volume.VolumeId;
    /// <summary>What ControllerPublish returned, handed to stage and publish as kubelet does.</summary>
    public Google.Protobuf.Collections.MapField<string, string> PublishContext { get; } = new();
    public string Staging { get; } = KubeletPaths.NewStaging(kubeletDir ?? cluster.KubeletDir);
    public string Target { get; } = KubeletPaths.NewTarget(kubeletDir ?? cluster.KubeletDir);
    public bool Block => capability.Block is not null;

    public NodeStageVolumeRequest StageRequest() => new()
    {
        VolumeId = volume.VolumeId, StagingTargetPath = Staging, VolumeCapability = capability, VolumeContext = { volume.VolumeContext },
        PublishContext = { PublishContext },
    };

    public NodePublishVolumeRequest PublishRequest(bool readOnly = false) => new()
    {
        VolumeId = volume.VolumeId, StagingTargetPath = Staging, TargetPath = Target, VolumeCapability = capability, Readonly = readOnly,
        VolumeContext = { volume.VolumeContext }, PublishContext = { PublishContext },
    };

    /// <summary>
    /// Like kubelet and the external-attacher, repeat a call that was ABORTED: the background reconciler may hold the
    /// volume for a moment. Tests that are about ABORTED call the clients directly.
    /// </summary>
    /// <summary>
    /// Retries ABORTED as a CO does. Bounded past the longest a node's own work may hold a volume's slot: a reconcile
    /// pass finishing a half-done unstage waits up to <see cref="SolarCsi.Node.Devices.LoopDevices.ReleaseWait"/> for a
    /// device still held open (seen in CI: a 5 s budget ran out behind it).
    /// </summary>
    private static async Task<T> RetryAbortedAsync<T>(Func<Task<T>> call)
    {
        var until = DateTime.UtcNow + SolarCsi.Node.Devices.LoopDevices.ReleaseWait + TimeSpan.FromSeconds(5);
        while (true)
        {
            try { return await call(); }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Aborted && DateTime.UtcNow < until) { await Task.Delay(100); }
        }
    }

    public async Task ControllerPublishAsync(bool readOnly = false)
    {
        var response = await RetryAbortedAsync(() => Controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
        {
            VolumeId = volume.VolumeId, NodeId = NodeId, VolumeCapability = capability, Readonly = readOnly,
        }).ResponseAsync);
        PublishContext.Clear();
        PublishContext.Add(response.PublishContext);
    }

    public async Task ControllerUnpublishAsync() =>
        await RetryAbortedAsync(() => Controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = NodeId }).ResponseAsync);

    public async Task StageAsync()
    {
        // kubelet creates the staging directory (and the target's parent) before calling us.
        Directory.CreateDirectory(Staging);
        await RetryAbortedAsync(() => Node.NodeStageVolumeAsync(StageRequest()).ResponseAsync);
    }

    public async Task PublishAsync(bool readOnly = false)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Target)!);
        await RetryAbortedAsync(() => Node.NodePublishVolumeAsync(PublishRequest(readOnly)).ResponseAsync);
    }

    public async Task UnpublishAsync() =>
        await RetryAbortedAsync(() => Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = Target }).ResponseAsync);

    public async Task UnstageAsync() =>
        await RetryAbortedAsync(() => Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = Staging }).ResponseAsync);

    public async Task AttachAsync(bool readOnly = false)
    {
        await StageAsync();
        await PublishAsync(readOnly);
    }

    /// <summary>Best-effort teardown for finally blocks, retrying ABORTED as a CO does; assertions live in the tests.</summary>
    public async Task DetachQuietlyAsync()
    {
        await QuietlyAsync(UnpublishAsync);
        await QuietlyAsync(UnstageAsync);
        await QuietlyAsync(ControllerUnpublishAsync);
    }

    private static async Task QuietlyAsync(Func<Task> call)
    {
        for (var attempt = 0; attempt < 20; attempt++)
        {
            try { await call(); return; }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Aborted) { await Task.Delay(100); }
            catch (Grpc.Core.RpcException) { return; }
        }
    }
}
