using Csi.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using A = SolarCsi.Agent.V1;
using SolarCsi.Controller.Agents;
using SolarCsi.Controller.Placement;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Media;
using SolarCsi.Core.Validation;
using ControllerBase = Csi.V1.Controller.ControllerBase;
using CapType = Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type;

namespace SolarCsi.Controller.Csi;

/// <summary>
/// CSI Controller: validates, takes the in-flight slot for the name or id, and routes to the agent that the
/// volume id names. Agents answer with CSI status codes, which pass through unchanged.
/// </summary>
public sealed class ControllerService(AgentDirectory directory, Inventory inventory, InFlightTracker inFlight, NodeAttachLimits attachLimits,
    ControllerOptions options, NameClaims claims, OrphanSweep orphans, ILogger<ControllerService> logger) : ControllerBase
{
    public static readonly CapType[] Capabilities =
    [
        CapType.CreateDeleteVolume, CapType.PublishUnpublishVolume, CapType.ListVolumes, CapType.GetCapacity,
        CapType.CreateDeleteSnapshot, CapType.ListSnapshots, CapType.CloneVolume, CapType.PublishReadonly,
        CapType.ExpandVolume, CapType.ListVolumesPublishedNodes, CapType.GetVolume, CapType.SingleNodeMultiWriter,
        CapType.VolumeCondition, CapType.ModifyVolume,
    ];

    // Storage work runs to completion even when the caller gives up; the CO retries and finds it done.
    private static CancellationToken Work => CancellationToken.None;

    public override async Task<CreateVolumeResponse> CreateVolume(CreateVolumeRequest request, ServerCallContext context)
    {
        var name = NameRules.RequireCsiName(request.Name);
        CapabilityRules.RequireWellFormed(request.VolumeCapabilities);
        var parameters = VolumeParameters.Parse(request.Parameters);
        var mutable = MutableParameters.Parse(parameters.Media, request.MutableParameters);
        CapabilityRules.For(parameters.Media).RequireSupported(request.VolumeCapabilities);
        foreach (var cap in request.VolumeCapabilities.Where(c => c.Mount is not null))
            MkfsRules.Require(CapabilityRules.For(parameters.Media).FsTypeOf(cap), parameters.MkfsOptions);
        // Remote volumes are reachable from every node: the CO's topology constrains the consumer, not the storage host.
        var topology = parameters.Medium.IsLocal ? request.AccessibilityRequirements : null;
        var (source, sourceId) = ContentSourceOf(request.VolumeContentSource);
        using var slot = inFlight.Acquire("name:" + name, "CreateVolume");

        var sourceBytes = 0L;
        if (sourceId is not null)
        {
            sourceBytes = sourceId.IsSnapshot
                ? (await inventory.GetSnapshotAsync(sourceId, Work)).SizeBytes
                : (await inventory.GetVolumeAsync(sourceId, Work)).CapacityBytes;
            if (sourceId.Media != parameters.Media || sourceId.Pool != parameters.Pool)
                throw CsiErrors.InvalidArgument($"content source {sourceId} is in {sourceId.Media} pool '{sourceId.Pool}', not the requested {parameters.Media} pool '{parameters.Pool}'");
        }
        var bytes = CapacityRules.Resolve(request.CapacityRange, sourceBytes);

        // "No volume of that name" is only true once every agent had a chance to announce itself.
        directory.RequireWarm("CreateVolume");
        if (await inventory.FindVolumeByNameAsync(name, Work) is { } existing)
        {
            var sameSource = (existing.ContentSource?.SnapshotId ?? "") == (source?.SnapshotId ?? "") &&
                             (existing.ContentSource?.VolumeId ?? "") == (source?.VolumeId ?? "");
            var sameParameters = parameters.Canonical().All(kv => existing.Parameters.TryGetValue(kv.Key, out var v) && v == kv.Value);
            if (!CapacityRules.Satisfies(existing.CapacityBytes, request.CapacityRange) || !sameSource || !sameParameters)
                throw CsiErrors.AlreadyExists($"volume '{name}' exists ({existing.VolumeId}) with a different size, source or parameters");
            return new CreateVolumeResponse { Volume = CsiMapping.ToCsi(existing) };
        }
        // On no agent that answers. If an earlier attempt gave the name to a node that is silent now, that node may
        // hold the volume (or be creating it): placing it elsewhere would make two.
        if (claims.Get(name) is { } claim && StorageId.ParseVolume(claim.VolumeId) is var claimed && !directory.Live().Any(a => a.NodeId == claimed.Node))
            throw CsiErrors.Unavailable($"volume '{name}' was given to node {claimed.Node} ({claim.VolumeId}), which is not answering; it may hold the " +
                                        "volume, so no other node gets the name. Retry once it is back");

        string nodeId;
        if (sourceId is not null)
        {
            nodeId = sourceId.Node;
            if (!PoolPlacement.Allowed(NodeTopology.Of(nodeId), topology))
                throw CsiErrors.ResourceExhausted($"the content source lives on node {nodeId}, outside the requested topology");
        }
        else
        {
            nodeId = (await PlaceAsync(parameters.Media, parameters.Pool, bytes, topology)).Agent.NodeId;
        }
        var create = new A.CreateVolumeRequest
        {
            Name = name, Media = parameters.Media, Pool = parameters.Pool, CapacityBytes = bytes, ContentSource = source,
            LimitBytes = request.CapacityRange?.LimitBytes ?? 0,
        };
        create.Parameters.Add(parameters.Canonical());
        // Kept with the volume (not compared by a repeated create: they may have been modified since).
        create.Parameters.Add(mutable);
        var volumeId = StorageId.ForVolume(parameters.Media, parameters.Pool, nodeId, name);
        await claims.SetAsync(name, volumeId, Work);
        var created = await directory.ClientFor(nodeId).CreateVolumeAsync(create, deadline: Inventory.Deadline(Inventory.LongCall), cancellationToken: Work);
        AgentReplies.RequireVolume(created, nodeId, volumeId);
        return new CreateVolumeResponse { Volume = CsiMapping.ToCsi(created) };
    }

    /// <summary>
    /// Heartbeat figures can be a beat behind (a disk freed or a volume deleted since the last one): when they say
    /// nothing fits, the candidates are asked live before the answer is RESOURCE_EXHAUSTED.
    /// </summary>
    private async Task<PlacementChoice> PlaceAsync(string media, string pool, long bytes, TopologyRequirement? topology)
    {
        var agents = directory.Live();
        try
        {
            return PoolPlacement.Choose(agents, media, pool, bytes, topology);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
        {
            return PoolPlacement.Choose(await inventory.WithLivePoolsAsync(agents, Work), media, pool, bytes, topology);
        }
    }

    private static (A.ContentSource? Source, StorageId? Id) ContentSourceOf(VolumeContentSource? source)
    {
        switch (source?.TypeCase)
        {
            case null or VolumeContentSource.TypeOneofCase.None:
                return (null, null);
            case VolumeContentSource.TypeOneofCase.Snapshot:
                var snap = StorageId.ParseSnapshot(source.Snapshot.SnapshotId, "volume_content_source.snapshot.snapshot_id");
                return (new A.ContentSource { SnapshotId = snap.ToString() }, snap);
            case VolumeContentSource.TypeOneofCase.Volume:
                var vol = StorageId.ParseVolume(source.Volume.VolumeId, "volume_content_source.volume.volume_id");
                return (new A.ContentSource { VolumeId = vol.ToString() }, vol);
            default:
                throw CsiErrors.InvalidArgument("volume_content_source has an unknown type");
        }
    }

    public override async Task<DeleteVolumeResponse> DeleteVolume(DeleteVolumeRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.VolumeId)) throw CsiErrors.InvalidArgument("volume_id is required");
        // An id we could never have issued names no volume: deleting it is already done.
        if (!StorageId.TryParse(request.VolumeId, out var id) || !id.IsVolume) return new DeleteVolumeResponse();
        using var slot = inFlight.Acquire(id.ToString(), "DeleteVolume");
        if (!directory.IsKnown(id.Node))
            throw CsiErrors.Unavailable($"node {id.Node} that holds {id} has not announced itself; cannot confirm the delete");
        await directory.ClientFor(id.Node).DeleteVolumeAsync(new A.DeleteVolumeRequest { VolumeId = id.ToString() },
            deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
        claims.Release(id);
        return new DeleteVolumeResponse();
    }

    public override async Task<ControllerPublishVolumeResponse> ControllerPublishVolume(ControllerPublishVolumeRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.VolumeId)) throw CsiErrors.InvalidArgument("volume_id is required");
        if (string.IsNullOrEmpty(request.NodeId)) throw CsiErrors.InvalidArgument("node_id is required");
        CapabilityRules.RequireWellFormed(request.VolumeCapability);
        var id = StorageId.ParseVolume(request.VolumeId);
        if (CapabilityRules.For(id.Media).WhyUnsupported(request.VolumeCapability) is { } why) throw CsiErrors.InvalidArgument(why);
        using var slot = inFlight.Acquire(id.ToString(), "ControllerPublishVolume");
        var volume = await inventory.GetVolumeAsync(id, Work);
        if (!directory.IsKnown(request.NodeId)) throw CsiErrors.NotFound($"node {request.NodeId} is unknown");
        if (MediaCatalog.Of(id.Media).IsLocal && request.NodeId != id.Node)
            throw CsiErrors.FailedPrecondition($"volume {id} is local to node {id.Node} and cannot be published to {request.NodeId}");
        var publish = new A.PublishVolumeRequest
        {
            VolumeId = id.ToString(),
            Publication = new A.Publication
            {
                NodeId = request.NodeId, Readonly = request.Readonly, AccessMode = (int)request.VolumeCapability.AccessMode.Mode,
                Block = request.VolumeCapability.Block is not null,
            },
            ConsumerCertificate = directory.Find(request.NodeId)?.CertificatePem ?? "",
        };
        publish.ConsumerAddresses.AddRange(directory.Find(request.NodeId)?.Addresses() ?? []);
        var published = await attachLimits.PublishWithinLimitAsync(id.ToString(), volume, request.NodeId,
            async () => await directory.ClientFor(id.Node).PublishVolumeAsync(publish, deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work), Work);
        var response = new ControllerPublishVolumeResponse();
        response.PublishContext.Add(published.PublishContext);
        return response;
    }

    public override async Task<ControllerUnpublishVolumeResponse> ControllerUnpublishVolume(ControllerUnpublishVolumeRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.VolumeId)) throw CsiErrors.InvalidArgument("volume_id is required");
        // The spec: a volume we cannot find is already unpublished — but only when it "can be safely regarded" so. An id
        // we could not have issued is; a volume whose storage host has not been heard from (a controller restart, a
        // host down) is not: answering OK would let the CO hand the volume to another node while the old node's key
        // still opens the export. The fence fails closed: UNAVAILABLE until the owner confirms, and the CO retries.
        if (!StorageId.TryParse(request.VolumeId, out var id) || !id.IsVolume) return new ControllerUnpublishVolumeResponse();
        if (!directory.IsKnown(id.Node))
        {
            directory.RequireWarm("ControllerUnpublishVolume");
            // A local volume lives on the only node that could use it: there is nothing to fence elsewhere, and a node
            // removed for good must not keep its VolumeAttachments for ever.
            if (MediaCatalog.Of(id.Media).IsLocal) return new ControllerUnpublishVolumeResponse();
            throw CsiErrors.Unavailable($"node {id.Node}, which exports volume {id}, has not announced itself since the controller started: " +
                "the revocation cannot be confirmed there; retry");
        }
        using var slot = inFlight.Acquire(id.ToString(), "ControllerUnpublishVolume");
        await directory.ClientFor(id.Node).UnpublishVolumeAsync(new A.UnpublishVolumeRequest { VolumeId = id.ToString(), NodeId = request.NodeId },
            deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
        return new ControllerUnpublishVolumeResponse();
    }

    public override async Task<ValidateVolumeCapabilitiesResponse> ValidateVolumeCapabilities(ValidateVolumeCapabilitiesRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.VolumeId)) throw CsiErrors.InvalidArgument("volume_id is required");
        CapabilityRules.RequireWellFormed(request.VolumeCapabilities);
        var id = StorageId.ParseVolume(request.VolumeId);
        var volume = await inventory.GetVolumeAsync(id, Work);
        VolumeParameters.Parse(request.Parameters);
        var reasons = request.VolumeCapabilities.Select(CapabilityRules.For(id.Media).WhyUnsupported).OfType<string>().ToArray();
        if (reasons.Length > 0) return new ValidateVolumeCapabilitiesResponse { Message = string.Join("; ", reasons) };
        var confirmed = new ValidateVolumeCapabilitiesResponse.Types.Confirmed();
        confirmed.VolumeCapabilities.AddRange(request.VolumeCapabilities);
        confirmed.VolumeContext.Add(request.VolumeContext.Count > 0 ? request.VolumeContext : volume.VolumeContext);
        confirmed.Parameters.Add(request.Parameters);
        confirmed.MutableParameters.Add(request.MutableParameters);
        return new ValidateVolumeCapabilitiesResponse { Confirmed = confirmed };
    }

    public override async Task<ListVolumesResponse> ListVolumes(ListVolumesRequest request, ServerCallContext context)
    {
        if (request.MaxEntries < 0) throw CsiErrors.InvalidArgument("max_entries must not be negative");
        if (request.StartingToken.Length > 0 && !StorageId.TryParse(request.StartingToken, out _))
            throw CsiErrors.Aborted($"starting_token '{StorageId.Printable(request.StartingToken)}' is not valid");
        var (page, next) = PageToken.Slice(await inventory.AllVolumesAsync(Work), v => v.VolumeId, request.MaxEntries, request.StartingToken);
        var response = new ListVolumesResponse { NextToken = next };
        foreach (var v in page)
        {
            var status = new ListVolumesResponse.Types.VolumeStatus
            {
                VolumeCondition = orphans.Orphans.TryGetValue(v.VolumeId, out var why) ? new VolumeCondition { Abnormal = true, Message = why } : CsiMapping.ConditionOf(v),
            };
            status.PublishedNodeIds.AddRange(v.Publications.Select(p => p.NodeId));
            response.Entries.Add(new ListVolumesResponse.Types.Entry { Volume = CsiMapping.ToCsi(v), Status = status });
        }
        return response;
    }

    public override async Task<GetCapacityResponse> GetCapacity(GetCapacityRequest request, ServerCallContext context)
    {
        foreach (var cap in request.VolumeCapabilities) CapabilityRules.RequireWellFormed(cap);
        var parameters = VolumeParameters.Parse(request.Parameters);
        if (request.VolumeCapabilities.Any(c => CapabilityRules.For(parameters.Media).WhyUnsupported(c) is not null)) return new GetCapacityResponse();
        // Asked live rather than from heartbeats: the provisioner publishes these numbers to the scheduler.
        // Remote media serve every segment from all storage hosts; local media only from the segment's node.
        var remote = !parameters.Medium.IsLocal;
        var pools = await inventory.PoolsAsync(a => remote || request.AccessibleTopology is null || PoolPlacement.Matches(a, request.AccessibleTopology),
            parameters.Media, parameters.Pool, Work);
        return new GetCapacityResponse
        {
            AvailableCapacity = pools.Sum(p => p.FreeBytes),
            // Whole disks: the largest free disk, not the sum, is the biggest volume that can be made.
            MaximumVolumeSize = pools.Count == 0 ? 0 : pools.Max(p => p.LargestFreeBytes),
            MinimumVolumeSize = CapacityRules.MiB,
        };
    }

    public override Task<ControllerGetCapabilitiesResponse> ControllerGetCapabilities(ControllerGetCapabilitiesRequest request, ServerCallContext context)
    {
        var response = new ControllerGetCapabilitiesResponse();
        response.Capabilities.AddRange(Capabilities.Select(t => new ControllerServiceCapability { Rpc = new ControllerServiceCapability.Types.RPC { Type = t } }));
        return Task.FromResult(response);
    }

    public override async Task<CreateSnapshotResponse> CreateSnapshot(CreateSnapshotRequest request, ServerCallContext context)
    {
        var name = NameRules.RequireCsiName(request.Name);
        if (string.IsNullOrEmpty(request.SourceVolumeId)) throw CsiErrors.InvalidArgument("source_volume_id is required");
        using var slot = inFlight.Acquire("snapshot:" + name, "CreateSnapshot");
        directory.RequireWarm("CreateSnapshot");
        if ((await inventory.AllSnapshotsAsync(Work)).FirstOrDefault(s => s.Name == name) is { } existing)
        {
            if (existing.SourceVolumeId != request.SourceVolumeId)
                throw CsiErrors.AlreadyExists($"snapshot '{name}' exists for another source volume ({existing.SourceVolumeId})");
            return new CreateSnapshotResponse { Snapshot = CsiMapping.ToCsi(existing) };
        }
        var source = StorageId.ParseVolume(request.SourceVolumeId, "source_volume_id");
        var volume = await inventory.GetVolumeAsync(source, Work);
        var create = new A.CreateSnapshotRequest { Name = name, SourceVolumeId = source.ToString() };
        // A local volume's agent freezes its own mount for the copy. An NBD volume is mounted elsewhere: its writers
        // are held on the nodes that attach it read-write while the storage host copies the image.
        var sites = MediaCatalog.Of(source.Media).IsLocal ? [] : WriterFreeze.Sites([source], [volume]);
        await using var freeze = new WriterFreeze(directory, StorageId.ForSnapshot(source.Media, source.Pool, source.Node, name).ToString(),
            options.WriterFreezeLease, logger);
        if (sites.Count > 0)
        {
            await freeze.FreezeAsync(sites, Work);
            create.FreezeToken = freeze.Token;
        }
        var created = await directory.ClientFor(source.Node).CreateSnapshotAsync(create, deadline: Inventory.Deadline(Inventory.LongCall), cancellationToken: Work);
        if (await freeze.ThawAsync() is [_, ..] lost)
        {
            // Writes may have gone on while it was cut: a torn snapshot is never reported ready. Removed before the
            // answer, so the CO's retry cuts it again instead of finding this one.
            await directory.ClientFor(source.Node).DeleteSnapshotAsync(new A.DeleteSnapshotRequest { SnapshotId = created.SnapshotId },
                deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
            throw CsiErrors.Aborted($"the writers of {source} on {string.Join(", ", lost)} were not held for the whole cut (the freeze's lease ran out " +
                "or the node plugin restarted); the snapshot was removed, retry");
        }
        return new CreateSnapshotResponse { Snapshot = CsiMapping.ToCsi(created) };
    }

    public override async Task<DeleteSnapshotResponse> DeleteSnapshot(DeleteSnapshotRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.SnapshotId)) throw CsiErrors.InvalidArgument("snapshot_id is required");
        if (!StorageId.TryParse(request.SnapshotId, out var id) || !id.IsSnapshot) return new DeleteSnapshotResponse();
        using var slot = inFlight.Acquire(id.ToString(), "DeleteSnapshot");
        if (!directory.IsKnown(id.Node))
            throw CsiErrors.Unavailable($"node {id.Node} that holds {id} has not announced itself; cannot confirm the delete");
        await directory.ClientFor(id.Node).DeleteSnapshotAsync(new A.DeleteSnapshotRequest { SnapshotId = id.ToString() },
            deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
        return new DeleteSnapshotResponse();
    }

    public override async Task<ListSnapshotsResponse> ListSnapshots(ListSnapshotsRequest request, ServerCallContext context)
    {
        if (request.MaxEntries < 0) throw CsiErrors.InvalidArgument("max_entries must not be negative");
        if (request.StartingToken.Length > 0 && !StorageId.TryParse(request.StartingToken, out _))
            throw CsiErrors.Aborted($"starting_token '{StorageId.Printable(request.StartingToken)}' is not valid");
        IEnumerable<A.SnapshotInfo> snapshots = await inventory.AllSnapshotsAsync(Work);
        if (request.SnapshotId.Length > 0) snapshots = snapshots.Where(s => s.SnapshotId == request.SnapshotId);
        if (request.SourceVolumeId.Length > 0) snapshots = snapshots.Where(s => s.SourceVolumeId == request.SourceVolumeId);
        var (page, next) = PageToken.Slice(snapshots, s => s.SnapshotId, request.MaxEntries, request.StartingToken);
        var response = new ListSnapshotsResponse { NextToken = next };
        response.Entries.AddRange(page.Select(s => new ListSnapshotsResponse.Types.Entry { Snapshot = CsiMapping.ToCsi(s) }));
        return response;
    }

    public override async Task<ControllerExpandVolumeResponse> ControllerExpandVolume(ControllerExpandVolumeRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.VolumeId)) throw CsiErrors.InvalidArgument("volume_id is required");
        if (request.CapacityRange is null) throw CsiErrors.InvalidArgument("capacity_range is required");
        if (request.VolumeCapability is not null) CapabilityRules.RequireWellFormed(request.VolumeCapability);
        var id = StorageId.ParseVolume(request.VolumeId);
        if (request.VolumeCapability is not null && CapabilityRules.For(id.Media).WhyUnsupported(request.VolumeCapability) is { } why)
            throw CsiErrors.InvalidArgument(why);
        var bytes = CapacityRules.Resolve(request.CapacityRange);
        using var slot = inFlight.Acquire(id.ToString(), "ControllerExpandVolume");
        await inventory.GetVolumeAsync(id, Work);
        var grown = await directory.ClientFor(id.Node).ExpandVolumeAsync(new A.ExpandVolumeRequest { VolumeId = id.ToString(), CapacityBytes = bytes },
            deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
        // The agent knows whether the node must still grow a device or filesystem (file, LVM) or not (tmpfs).
        return new ControllerExpandVolumeResponse { CapacityBytes = grown.CapacityBytes, NodeExpansionRequired = grown.NodeExpansionRequired };
    }

    public override async Task<ControllerModifyVolumeResponse> ControllerModifyVolume(ControllerModifyVolumeRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.VolumeId)) throw CsiErrors.InvalidArgument("volume_id is required");
        var id = StorageId.ParseVolume(request.VolumeId);
        MutableParameters.Parse(id.Media, request.MutableParameters);
        using var slot = inFlight.Acquire(id.ToString(), "ControllerModifyVolume");
        await inventory.GetVolumeAsync(id, Work);
        // The spec lets a CO send an empty set (a VolumeAttributesClass without parameters): nothing to change.
        if (request.MutableParameters.Count == 0) return new ControllerModifyVolumeResponse();
        var modify = new A.ModifyVolumeRequest { VolumeId = id.ToString() };
        modify.MutableParameters.Add(request.MutableParameters);
        await directory.ClientFor(id.Node).ModifyVolumeAsync(modify, deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
        return new ControllerModifyVolumeResponse();
    }

    public override async Task<ControllerGetVolumeResponse> ControllerGetVolume(ControllerGetVolumeRequest request, ServerCallContext context)
    {
        var id = StorageId.ParseVolume(request.VolumeId);
        var volume = await inventory.GetVolumeAsync(id, Work);
        var status = new ControllerGetVolumeResponse.Types.VolumeStatus { VolumeCondition = CsiMapping.ConditionOf(volume) };
        status.PublishedNodeIds.AddRange(volume.Publications.Select(p => p.NodeId));
        return new ControllerGetVolumeResponse { Volume = CsiMapping.ToCsi(volume), Status = status };
    }
}
