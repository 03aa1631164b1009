using Csi.V1;

namespace SolarCsi.SanityTests;

/// <summary>The calls kubelet makes, in kubelet's order, for one volume on one node.</summary>
internal sealed class NodeSteps(ClusterFixture fx, Volume volume, VolumeCapability capability, Csi.V1.Node.NodeClient? node = null)
{
    public Csi.V1.Node.NodeClient Node { get; } = node ?? fx.A.Node;
    public string Staging { get; } = fx.NewStagingPath();
    public string Target { get; } = fx.NewTargetPath();
    public bool Block => capability.Block is not null;

    public NodeStageVolumeRequest StageRequest() => new()
    {
        VolumeId = volume.VolumeId, StagingTargetPath = Staging, VolumeCapability = capability, VolumeContext = { volume.VolumeContext },
    };

    public NodePublishVolumeRequest PublishRequest(bool readOnly = false) => new()
    {
        VolumeId = volume.VolumeId, StagingTargetPath = Staging, TargetPath = Target, VolumeCapability = capability, Readonly = readOnly,
        VolumeContext = { volume.VolumeContext },
    };

    public async Task ControllerPublishAsync() =>
        await fx.Controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = ClusterFixture.NodeA, VolumeCapability = capability });

    public async Task StageAsync()
    {
        // kubelet creates the staging directory (and the target's parent) before calling us.
        Directory.CreateDirectory(Staging);
        await Node.NodeStageVolumeAsync(StageRequest());
    }

    public async Task PublishAsync(bool readOnly = false)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Target)!);
        await Node.NodePublishVolumeAsync(PublishRequest(readOnly));
    }

    public async Task UnpublishAsync() => await Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = Target });

    public async Task UnstageAsync() => await Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = Staging });

    public async Task AttachAsync(bool readOnly = false)
    {
        await StageAsync();
        await PublishAsync(readOnly);
    }

    /// <summary>Best-effort teardown for finally blocks; assertions live in the tests.</summary>
    public async Task DetachQuietlyAsync()
    {
        try { await UnpublishAsync(); } catch (Grpc.Core.RpcException) { }
        try { await UnstageAsync(); } catch (Grpc.Core.RpcException) { }
        try { await fx.Controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = ClusterFixture.NodeA }); }
        catch (Grpc.Core.RpcException) { }
    }
}
