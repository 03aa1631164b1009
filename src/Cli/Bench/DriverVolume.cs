using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;
using SolarCsi.Local;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.Cli;

/// <summary>
/// One volume driven through the plugins the way a CO drives it: the external-provisioner's create and delete, the
/// attacher's ControllerPublish, and kubelet's node calls with kubelet-like paths (the staging directory and the
/// target's parent exist before the call, as kubelet makes them). Every call is a real gRPC call over the socket.
/// </summary>
internal sealed class DriverVolume(LocalCluster cluster, string name, string media, long bytes, string fsType, string? localNode,
    VolumeCapability? capability = null)
{
    private readonly Google.Protobuf.Collections.MapField<string, string> _publishContext = new();
    private readonly string _dir = Path.Combine(cluster.KubeletDir, "bench", name);

    public VolumeCapability Capability { get; } = capability ?? new()
    {
        Mount = new VolumeCapability.Types.MountVolume { FsType = fsType },
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = AccessMode.SingleNodeWriter },
    };

    public LocalCluster Cluster => cluster;
    public string VolumeId { get; private set; } = "";
    /// <summary>What ControllerPublish returned (for NBD: the export's address and this node's key).</summary>
    public IReadOnlyDictionary<string, string> PublishContext => _publishContext;
    /// <summary>The node the volume is used on: its own node for local media, any other node for NBD.</summary>
    public NodePlugin Node { get; private set; } = null!;
    public string Staging => Path.Combine(_dir, "globalmount");
    public string Target => Path.Combine(_dir, "pod", "mount");
    /// <summary>Calls that came back ABORTED and were repeated, as kubelet and the sidecars repeat them.</summary>
    public int Retries { get; private set; }

    private Csi.V1.Controller.ControllerClient Controller => cluster.Controller.Controller;

    public async Task CreateAsync()
    {
        var request = new CreateVolumeRequest
        {
            Name = name, CapacityRange = new CapacityRange { RequiredBytes = bytes }, VolumeCapabilities = { Capability },
            Parameters = { ["media"] = media },
        };
        if (localNode is not null)
            request.AccessibilityRequirements = new TopologyRequirement { Requisite = { new Topology { Segments = { NodeTopology.Of(localNode) } } } };
        VolumeId = (await RetryAsync(() => Controller.CreateVolumeAsync(request).ResponseAsync)).Volume.VolumeId;
        var host = StorageId.ParseVolume(VolumeId).Node;
        Node = media == "nbd" && cluster.Nodes.Count > 1 ? cluster.Nodes.First(n => n.NodeId != host) : cluster.Nodes.First(n => n.NodeId == host);
    }

    public async Task ControllerPublishAsync()
    {
        var response = await RetryAsync(() => Controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
        {
            VolumeId = VolumeId, NodeId = Node.NodeId, VolumeCapability = Capability,
        }).ResponseAsync);
        _publishContext.Clear();
        _publishContext.Add(response.PublishContext);
    }

    public async Task StageAsync()
    {
        Directory.CreateDirectory(Staging);
        await RetryAsync(() => Node.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
        {
            VolumeId = VolumeId, StagingTargetPath = Staging, VolumeCapability = Capability, PublishContext = { _publishContext },
        }).ResponseAsync);
    }

    public async Task PublishAsync()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Target)!);
        await RetryAsync(() => Node.Node.NodePublishVolumeAsync(new NodePublishVolumeRequest
        {
            VolumeId = VolumeId, StagingTargetPath = Staging, TargetPath = Target, VolumeCapability = Capability, PublishContext = { _publishContext },
        }).ResponseAsync);
    }

    public Task UnpublishAsync() =>
        RetryAsync(() => Node.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = VolumeId, TargetPath = Target }).ResponseAsync);

    public Task UnstageAsync() =>
        RetryAsync(() => Node.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = VolumeId, StagingTargetPath = Staging }).ResponseAsync);

    public Task ControllerUnpublishAsync() =>
        RetryAsync(() => Controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = VolumeId, NodeId = Node.NodeId }).ResponseAsync);

    public async Task DeleteAsync()
    {
        await RetryAsync(() => Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = VolumeId }).ResponseAsync);
        // kubelet removes the directories it made once the volume is gone from the node.
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>
    /// Repeats a call that came back ABORTED (another operation on the volume, e.g. the reconciler, held it), as the
    /// CO would; anything else is the caller's error.
    /// </summary>
    private async Task<T> RetryAsync<T>(Func<Task<T>> call)
    {
        for (var attempt = 0; ; attempt++)
        {
            try { return await call(); }
            catch (RpcException e) when (e.StatusCode == StatusCode.Aborted && attempt < 50)
            {
                Retries++;
                await Task.Delay(100);
            }
        }
    }
}
