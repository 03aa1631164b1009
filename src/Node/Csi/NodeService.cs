using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Concurrency;
using SolarCsi.Node.Devices;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Staging;
using NodeBase = Csi.V1.Node.NodeBase;

namespace SolarCsi.Node.Csi;

/// <summary>
/// CSI Node: validates, takes the volume's in-flight slot, delegates to <see cref="VolumeStaging"/>,
/// <see cref="VolumePublishing"/> or <see cref="StagedVolumes"/>.
/// </summary>
public sealed class NodeService(
    VolumeStaging staging, VolumePublishing publishing, StagedVolumes staged, InFlightTracker inFlight, PathRules paths, NodeOptions options,
    SolarCsi.Node.Nbd.NbdExports exports) : NodeBase
{
    // OS work is not tied to the caller's deadline: kubelet retries, and a half-finished mount is worse than a late one.
    private static CancellationToken Work => CancellationToken.None;

    // Order of checks, as csi-sanity and the spec expect: every required field present (INVALID_ARGUMENT),
    // then the id resolved (NOT_FOUND), then the values themselves (paths under the allowed roots).

    public override async Task<NodeStageVolumeResponse> NodeStageVolume(NodeStageVolumeRequest request, ServerCallContext context)
    {
        Require(request.VolumeId, "volume_id");
        Require(request.StagingTargetPath, "staging_target_path");
        CapabilityRules.RequireWellFormed(request.VolumeCapability);
        var id = StorageId.ParseVolume(request.VolumeId);
        var stagingPath = paths.Require(request.StagingTargetPath, "staging_target_path");
        var cap = RequireSupported(id, request.VolumeCapability);
        using var slot = inFlight.Acquire(id.ToString(), "NodeStageVolume");
        var mkfs = request.VolumeContext.TryGetValue(VolumeContextKeys.MkfsOptions, out var m) ? VolumeParameters.ParseMkfsOptions(m) : [];
        // Checked again here: the volume context is the CO's copy, and this is where mkfs runs.
        if (cap.Block is null) MkfsRules.Require(CapabilityRules.For(id.Media).FsTypeOf(cap), mkfs);
        await staging.StageAsync(new StageRequest(id.ToString(), stagingPath, cap.Block is not null, CapabilityRules.For(id.Media).FsTypeOf(cap),
            cap.Mount?.MountFlags.ToArray() ?? [], Unsealed(id, request.PublishContext), mkfs), Work);
        return new NodeStageVolumeResponse();
    }

    public override async Task<NodeUnstageVolumeResponse> NodeUnstageVolume(NodeUnstageVolumeRequest request, ServerCallContext context)
    {
        Require(request.VolumeId, "volume_id");
        Require(request.StagingTargetPath, "staging_target_path");
        var id = StorageId.ParseVolume(request.VolumeId);
        var stagingPath = paths.Require(request.StagingTargetPath, "staging_target_path");
        using var slot = inFlight.Acquire(id.ToString(), "NodeUnstageVolume");
        await staging.UnstageAsync(id.ToString(), stagingPath, Work);
        return new NodeUnstageVolumeResponse();
    }

    public override async Task<NodePublishVolumeResponse> NodePublishVolume(NodePublishVolumeRequest request, ServerCallContext context)
    {
        Require(request.VolumeId, "volume_id");
        Require(request.StagingTargetPath, "staging_target_path");
        Require(request.TargetPath, "target_path");
        CapabilityRules.RequireWellFormed(request.VolumeCapability);
        var id = StorageId.ParseVolume(request.VolumeId);
        var stagingPath = paths.Require(request.StagingTargetPath, "staging_target_path");
        var target = paths.Require(request.TargetPath, "target_path");
        RequireSupported(id, request.VolumeCapability);
        if (target == stagingPath) throw CsiErrors.InvalidArgument("target_path must differ from staging_target_path");
        using var slot = inFlight.Acquire(id.ToString(), "NodePublishVolume");
        var readOnly = request.Readonly ||
                       request.VolumeCapability.AccessMode.Mode is VolumeCapability.Types.AccessMode.Types.Mode.SingleNodeReaderOnly
                           or VolumeCapability.Types.AccessMode.Types.Mode.MultiNodeReaderOnly;
        await publishing.PublishAsync(id.ToString(), stagingPath, target, request.VolumeCapability.Block is not null, readOnly, Work);
        return new NodePublishVolumeResponse();
    }

    public override async Task<NodeUnpublishVolumeResponse> NodeUnpublishVolume(NodeUnpublishVolumeRequest request, ServerCallContext context)
    {
        Require(request.VolumeId, "volume_id");
        Require(request.TargetPath, "target_path");
        var id = StorageId.ParseVolume(request.VolumeId);
        var target = paths.Require(request.TargetPath, "target_path");
        using var slot = inFlight.Acquire(id.ToString(), "NodeUnpublishVolume");
        await publishing.UnpublishAsync(id.ToString(), target, Work);
        return new NodeUnpublishVolumeResponse();
    }

    public override async Task<NodeGetVolumeStatsResponse> NodeGetVolumeStats(NodeGetVolumeStatsRequest request, ServerCallContext context)
    {
        Require(request.VolumeId, "volume_id");
        Require(request.VolumePath, "volume_path");
        var id = StorageId.ParseVolume(request.VolumeId);
        var entry = staged.RequireStagedAt(id.ToString(), request.VolumePath);
        var problem = await staged.ConditionAsync(entry, Work);
        var response = new NodeGetVolumeStatsResponse
        {
            VolumeCondition = new VolumeCondition { Abnormal = problem is not null, Message = problem ?? "attached and mounted" },
        };
        if (entry.Block)
        {
            response.Usage.Add(new VolumeUsage { Unit = VolumeUsage.Types.Unit.Bytes, Total = staged.DeviceSize(entry) });
        }
        else if (problem is null)
        {
            var usage = FilesystemStats.Of(request.VolumePath);
            response.Usage.Add(new VolumeUsage { Unit = VolumeUsage.Types.Unit.Bytes, Total = usage.TotalBytes, Available = usage.AvailableBytes, Used = usage.UsedBytes });
            response.Usage.Add(new VolumeUsage { Unit = VolumeUsage.Types.Unit.Inodes, Total = usage.TotalInodes, Available = usage.FreeInodes, Used = usage.UsedInodes });
        }
        return response;
    }

    public override async Task<NodeExpandVolumeResponse> NodeExpandVolume(NodeExpandVolumeRequest request, ServerCallContext context)
    {
        Require(request.VolumeId, "volume_id");
        Require(request.VolumePath, "volume_path");
        if (request.VolumeCapability is not null) CapabilityRules.RequireWellFormed(request.VolumeCapability);
        var id = StorageId.ParseVolume(request.VolumeId);
        var required = request.CapacityRange is null ? 0 : CapacityRules.Resolve(request.CapacityRange);
        using var slot = inFlight.Acquire(id.ToString(), "NodeExpandVolume");
        var size = await staged.ExpandAsync(id.ToString(), request.VolumePath, request.CapacityRange?.RequiredBytes > 0 ? required : 0, Work);
        return new NodeExpandVolumeResponse { CapacityBytes = size };
    }

    public override Task<NodeGetCapabilitiesResponse> NodeGetCapabilities(NodeGetCapabilitiesRequest request, ServerCallContext context)
    {
        var response = new NodeGetCapabilitiesResponse();
        foreach (var type in new[]
                 {
                     NodeServiceCapability.Types.RPC.Types.Type.StageUnstageVolume,
                     NodeServiceCapability.Types.RPC.Types.Type.GetVolumeStats,
                     NodeServiceCapability.Types.RPC.Types.Type.ExpandVolume,
                     NodeServiceCapability.Types.RPC.Types.Type.VolumeCondition,
                 })
            response.Capabilities.Add(new NodeServiceCapability { Rpc = new NodeServiceCapability.Types.RPC { Type = type } });
        return Task.FromResult(response);
    }

    public override Task<NodeGetInfoResponse> NodeGetInfo(NodeGetInfoRequest request, ServerCallContext context)
    {
        var response = new NodeGetInfoResponse
        {
            NodeId = options.NodeId,
            MaxVolumesPerNode = Attach.AttachLimit.Effective(options.MaxVolumes),
            AccessibleTopology = new Topology(),
        };
        response.AccessibleTopology.Segments.Add(options.Topology);
        return Task.FromResult(response);
    }

    private static void Require(string value, string field)
    {
        if (string.IsNullOrEmpty(value)) throw CsiErrors.InvalidArgument($"{field} is required");
    }

    private static VolumeCapability RequireSupported(StorageId id, VolumeCapability? capability)
    {
        CapabilityRules.RequireWellFormed(capability);
        if (CapabilityRules.For(id.Media).WhyUnsupported(capability!) is { } why) throw CsiErrors.InvalidArgument(why);
        return capability!;
    }

    /// <summary>
    /// publish_context with the NBD key opened with this node's certificate, if it came sealed, or read from this node's
    /// own exports when the volume lives here.
    /// </summary>
    private IReadOnlyDictionary<string, string> Unsealed(StorageId id, IDictionary<string, string> context) =>
        SolarCsi.Node.Nbd.NbdConnection.Unsealed(context.AsReadOnly(), options.Tls is { } tls
                ? key => SolarCsi.Node.Nbd.SealedKey.Unseal(key, tls.Own, id.ToString(), options.NodeId)
                : null,
            id.Node == options.NodeId
                ? () => exports.KeyOf(id.ToString(), options.NodeId) ?? throw CsiErrors.FailedPrecondition(
                    $"volume {id} is not published to this node (its export admits no key for {options.NodeId}); ControllerPublish it first")
                : null);
}
