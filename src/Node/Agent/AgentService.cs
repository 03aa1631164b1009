using Grpc.Core;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Diagnostics;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Serving;
using AgentBase = SolarCsi.Agent.V1.Agent.AgentBase;

namespace SolarCsi.Node.Agent;

/// <summary>
/// The storage agent API: routes each call to the pool that owns the id, one operation per volume at a time; how a
/// volume reaches the nodes that use it is its medium's serving (<see cref="IVolumeServing"/>).
/// </summary>
public sealed class AgentService(PoolSet pools, InFlightTracker inFlight, ServingSet servings, FreezeLeases freezes, GroupSnapshotStore groups) : AgentBase
{
    /// <summary>The slot name a create holds: FindVolumeByName reads it to say "being created".</summary>
    private const string CreateOperation = "CreateVolume";

    public override async Task<VolumeInfo> CreateVolume(CreateVolumeRequest request, ServerCallContext context)
    {
        NameRules.RequireCsiName(request.Name);
        var pool = pools.RequireAvailable(pools.Find(request.Media, request.Pool)
                                          ?? throw CsiErrors.NotFound($"node {pools.NodeId} has no {request.Media} pool '{request.Pool}'"));
        var id = StorageId.ForVolume(pool.Media, pool.Name, pools.NodeId, request.Name).ToString();
        using var slot = inFlight.Acquire(id, CreateOperation);
        RequireReadable(pool, id);
        if (request.CapacityBytes <= 0 || request.CapacityBytes > CapacityRules.MaxBytes)
            throw CsiErrors.OutOfRange($"capacity {request.CapacityBytes} is out of range");
        var source = request.ContentSource is { } s && (s.SnapshotId.Length > 0 || s.VolumeId.Length > 0) ? s : null;
        // A clone copies its source for as long as that takes: no stage or snapshot of the source may start meanwhile.
        using var sourceSlot = source is { VolumeId.Length: > 0 } ? inFlight.Acquire(source.VolumeId, "CreateVolume (clone source)") : null;
        if (source is not null)
        {
            var sourceId = source.SnapshotId.Length > 0 ? source.SnapshotId : source.VolumeId;
            if (!StorageId.TryParse(sourceId, out var parsed) || parsed.Node != pools.NodeId || parsed.Pool != pool.Name)
                throw CsiErrors.InvalidArgument($"content source {sourceId} is not in pool {pool.Name} on node {pools.NodeId}");
        }
        servings.For(pool).RequireEnforceable(null, MutableParameters.Limits(request.Parameters));
        FaultPoints.Hit("agent:create");
        var record = await pool.CreateVolumeAsync(id, request.Name, request.CapacityBytes, request.LimitBytes, new Dictionary<string, string>(request.Parameters), source, Detached(context));
        return AgentMapping.ToInfo(record, pool);
    }

    public override async Task<DeleteVolumeResponse> DeleteVolume(DeleteVolumeRequest request, ServerCallContext context)
    {
        var pool = OwningOrNull(request.VolumeId);
        if (pool is null) return new DeleteVolumeResponse();
        using var slot = inFlight.Acquire(request.VolumeId, "DeleteVolume");
        RequireReadable(pool, request.VolumeId);
        // What serves the volume goes before its data, but only once nobody is admitted (the pool refuses published volumes).
        if (pool.GetVolume(request.VolumeId) is not { Publications.Count: > 0 })
            await servings.For(pool).RemoveAsync(request.VolumeId, Detached(context));
        await pool.DeleteVolumeAsync(request.VolumeId, Detached(context));
        return new DeleteVolumeResponse();
    }

    public override Task<VolumeInfo> GetVolume(GetVolumeRequest request, ServerCallContext context)
    {
        var pool = pools.Owning(request.VolumeId);
        if (pool.GetVolume(request.VolumeId) is { } record) return Task.FromResult(AgentMapping.ToInfo(record, pool, ProblemOf(record, pool)));
        if (pool.IsUnreadable(request.VolumeId)) return Task.FromResult(UnreadableInfo(pool, request.VolumeId));
        throw CsiErrors.NotFound($"volume {request.VolumeId} not found");
    }

    /// <summary>
    /// A volume whose record could not be read still exists as far as anyone can tell (its medium is kept): it is
    /// listed as abnormal, with no size, until an operator repairs or removes it. Creating over it or deleting it
    /// would risk its data, so both are refused.
    /// </summary>
    private string UnreadableProblem(string volumeId) =>
        $"the record of volume {volumeId} on node {pools.NodeId} is unreadable and was moved aside; its data is kept. " +
        "Repair the record or remove the volume with `solar cleanup --apply` (see `solar node-state`)";

    private void RequireReadable(IMediaPool pool, string volumeId)
    {
        if (pool.IsUnreadable(volumeId)) throw CsiErrors.FailedPrecondition(UnreadableProblem(volumeId));
    }

    private VolumeInfo UnreadableInfo(IMediaPool pool, string volumeId)
    {
        var info = new VolumeInfo { VolumeId = volumeId, Abnormal = true, ConditionMessage = UnreadableProblem(volumeId) };
        info.VolumeContext.Add(new Dictionary<string, string> { [VolumeContextKeys.Media] = pool.Media, [VolumeContextKeys.Pool] = pool.Name });
        return info;
    }

    /// <summary>What the storage host itself can see is wrong with a volume.</summary>
    private string? ProblemOf(VolumeRecord record, IMediaPool pool)
    {
        if (pool.BackingProblem(record) is { } problem) return $"{problem} on node {pools.NodeId}";
        return servings.For(pool).ProblemOf(record);
    }

    public override Task<FindVolumeByNameResponse> FindVolumeByName(FindVolumeByNameRequest request, ServerCallContext context)
    {
        foreach (var pool in pools.All)
        {
            var id = StorageId.ForVolume(pool.Media, pool.Name, pools.NodeId, request.Name).ToString();
            if (pool.GetVolume(id) is { } record && record.Name == request.Name)
                return Task.FromResult(new FindVolumeByNameResponse { Found = true, Volume = AgentMapping.ToInfo(record, pool) });
            // Its record is written last: a create still running is invisible in the pool, but not in the slots.
            if (inFlight.OperationOn(id) == CreateOperation)
                return Task.FromResult(new FindVolumeByNameResponse { InProgress = $"volume '{request.Name}' is being created on node {pools.NodeId} ({id})" });
            if (pool.IsUnreadable(id))
                return Task.FromResult(new FindVolumeByNameResponse { Unreadable = UnreadableProblem(id) });
        }
        return Task.FromResult(new FindVolumeByNameResponse { Found = false });
    }

    public override Task<CountPublicationsResponse> CountPublications(CountPublicationsRequest request, ServerCallContext context)
    {
        if (request.NodeId.Length == 0) throw CsiErrors.InvalidArgument("node_id is required");
        var except = request.ExceptVolumeIds.ToHashSet(StringComparer.Ordinal);
        var count = pools.All.SelectMany(p => p.ListVolumes())
            .Count(v => !except.Contains(v.VolumeId) && v.Publications.Any(p => p.NodeId == request.NodeId));
        return Task.FromResult(new CountPublicationsResponse { Count = count });
    }

    public override Task<ListVolumesResponse> ListVolumes(ListVolumesRequest request, ServerCallContext context)
    {
        var response = new ListVolumesResponse();
        foreach (var pool in pools.All)
        {
            response.Volumes.AddRange(pool.ListVolumes().Select(v => AgentMapping.ToInfo(v, pool, ProblemOf(v, pool))));
            response.Volumes.AddRange(pool.UnreadableVolumeNames()
                .Select(name => UnreadableInfo(pool, new StorageId(pool.Media, pool.Name, pools.NodeId, name).ToString())));
        }
        return Task.FromResult(response);
    }

    public override async Task<VolumeInfo> ExpandVolume(ExpandVolumeRequest request, ServerCallContext context)
    {
        var pool = pools.Owning(request.VolumeId);
        using var slot = inFlight.Acquire(request.VolumeId, "ExpandVolume");
        if (request.CapacityBytes > CapacityRules.MaxBytes) throw CsiErrors.OutOfRange($"capacity {request.CapacityBytes} is out of range");
        var info = AgentMapping.ToInfo(await pool.ExpandVolumeAsync(request.VolumeId, request.CapacityBytes, Detached(context)), pool);
        info.NodeExpansionRequired = pool.NodeExpansionRequired;
        return info;
    }

    public override async Task<PublishVolumeResponse> PublishVolume(PublishVolumeRequest request, ServerCallContext context)
    {
        var pool = pools.Owning(request.VolumeId);
        using var slot = inFlight.Acquire(request.VolumeId, "PublishVolume");
        var record = pool.GetVolume(request.VolumeId) ?? throw CsiErrors.NotFound($"volume {request.VolumeId} not found");
        var p = request.Publication;
        var wanted = new PublicationRecord(p.NodeId, p.Readonly, p.AccessMode, p.Block);
        var admitted = PublicationRules.Admit(request.VolumeId, record.Publications, wanted);
        var response = new PublishVolumeResponse();
        var readOnly = p.Readonly || PublicationRules.IsReadOnlyMode(p.AccessMode);
        foreach (var (key, value) in await servings.For(pool).AdmitAsync(pool, record, request, readOnly, Detached(context)))
            response.PublishContext[key] = value;
        if (admitted.Count != record.Publications.Count)
            await pool.SaveVolumeAsync(record with { Publications = admitted }, Detached(context));
        return response;
    }

    public override async Task<UnpublishVolumeResponse> UnpublishVolume(UnpublishVolumeRequest request, ServerCallContext context)
    {
        var pool = OwningOrNull(request.VolumeId);
        // The slot before the record: what is saved below is then the record as it is, not a copy another holder of
        // the slot (a stage preparing the volume's backing) has rewritten meanwhile.
        using var slot = pool is null ? null : inFlight.Acquire(request.VolumeId, "UnpublishVolume");
        if (pool?.GetVolume(request.VolumeId) is not { } record)
        {
            // No record (a crash mid-delete): still make sure nothing serves it.
            if (pool is not null && servings.For(pool).Serves(request.VolumeId))
                await servings.For(pool).RemoveAsync(request.VolumeId, Detached(context));
            return new UnpublishVolumeResponse();
        }
        var kept = record.Publications.Where(p => request.NodeId.Length > 0 && p.NodeId != request.NodeId).ToList();
        // Fence first, record second: a crash in between must leave the node recorded (so the retry revokes
        // again), never revoked in the record but still holding a key.
        await servings.For(pool).RevokeAsync(request.VolumeId, request.NodeId, Detached(context));
        if (kept.Count != record.Publications.Count)
            await pool.SaveVolumeAsync(record with { Publications = kept }, Detached(context));
        return new UnpublishVolumeResponse();
    }

    public override async Task<SnapshotInfo> CreateSnapshot(CreateSnapshotRequest request, ServerCallContext context)
    {
        NameRules.RequireCsiName(request.Name);
        var pool = pools.Owning(request.SourceVolumeId);
        var source = StorageId.ParseVolume(request.SourceVolumeId, "source_volume_id");
        var id = StorageId.ForSnapshot(source.Media, source.Pool, source.Node, request.Name).ToString();
        var member = request.GroupSnapshotId.Length > 0;
        // The caller of a group member or of a lone snapshot with a freeze token has frozen the writers wherever they
        // mount the volume; when one of those freezes ran on this node, it already holds the volume's slot.
        var token = member ? request.GroupSnapshotId : request.FreezeToken;
        using var slot = token.Length > 0 && freezes.Holds(token, request.SourceVolumeId) ? null : inFlight.Acquire(request.SourceVolumeId, "CreateSnapshot");
        if (token.Length == 0 && pool.GetVolume(request.SourceVolumeId) is { } sourceRecord && servings.For(pool).WhyUnfrozenSnapshotTears(sourceRecord) is { } torn)
            throw CsiErrors.FailedPrecondition(torn);
        if (pool.ListSnapshots().FirstOrDefault(s => s.SnapshotId == id) is { } existing && existing.SourceVolumeId != request.SourceVolumeId)
            throw CsiErrors.AlreadyExists($"snapshot '{request.Name}' exists with another source volume");
        var info = AgentMapping.ToInfo(await pool.CreateSnapshotAsync(id, request.Name, request.SourceVolumeId, Detached(context)));
        if (member)
        {
            await groups.AddMemberAsync(id, request.GroupSnapshotId, Detached(context));
            info.GroupSnapshotId = request.GroupSnapshotId;
        }
        return info;
    }

    public override async Task<DeleteSnapshotResponse> DeleteSnapshot(DeleteSnapshotRequest request, ServerCallContext context)
    {
        var pool = OwningOrNull(request.SnapshotId);
        if (pool is null) return new DeleteSnapshotResponse();
        using var slot = inFlight.Acquire(request.SnapshotId, "DeleteSnapshot");
        if (groups.GroupOf(request.SnapshotId) is { } group && group != request.GroupSnapshotId)
            throw CsiErrors.FailedPrecondition($"snapshot {request.SnapshotId} belongs to group snapshot {group}; delete the group");
        await pool.DeleteSnapshotAsync(request.SnapshotId, Detached(context));
        groups.RemoveMember(request.SnapshotId);
        return new DeleteSnapshotResponse();
    }

    public override Task<ListSnapshotsResponse> ListSnapshots(ListSnapshotsRequest request, ServerCallContext context)
    {
        var response = new ListSnapshotsResponse();
        foreach (var pool in pools.All)
            response.Snapshots.AddRange(pool.ListSnapshots().Select(s =>
            {
                var info = AgentMapping.ToInfo(s);
                info.GroupSnapshotId = groups.GroupOf(s.SnapshotId) ?? "";
                return info;
            }));
        return Task.FromResult(response);
    }

    public override Task<GetCapacityResponse> GetCapacity(GetCapacityRequest request, ServerCallContext context)
    {
        var response = new GetCapacityResponse();
        response.Pools.AddRange(pools.All.Where(p => request.Pool.Length == 0 || p.Name == request.Pool).Select(pools.Describe));
        return Task.FromResult(response);
    }

    public override async Task<VolumeInfo> ModifyVolume(ModifyVolumeRequest request, ServerCallContext context)
    {
        var pool = pools.Owning(request.VolumeId);
        using var slot = inFlight.Acquire(request.VolumeId, "ModifyVolume");
        var record = pool.GetVolume(request.VolumeId) ?? throw CsiErrors.NotFound($"volume {request.VolumeId} not found");
        var changes = MutableParameters.Parse(pool.Media, request.MutableParameters);
        var parameters = new Dictionary<string, string>(record.Parameters);
        foreach (var (key, value) in changes) parameters[key] = value;
        servings.For(pool).RequireEnforceable(request.VolumeId, MutableParameters.Limits(parameters));
        // Record first: an export (re)started from now on comes up with the new limit; then the live one.
        var modified = record with { Parameters = parameters };
        await pool.SaveVolumeAsync(modified, Detached(context));
        await servings.For(pool).ApplyLimitsAsync(request.VolumeId, MutableParameters.Limits(parameters), Detached(context));
        return AgentMapping.ToInfo(modified, pool);
    }

    public override async Task<FreezeResponse> Freeze(FreezeRequest request, ServerCallContext context)
    {
        if (request.Token.Length == 0) throw CsiErrors.InvalidArgument("token is required");
        await freezes.FreezeAsync(request.Token, request.VolumeIds, TimeSpan.FromSeconds(request.LeaseSeconds), Detached(context));
        return new FreezeResponse();
    }

    public override async Task<ThawResponse> Thaw(ThawRequest request, ServerCallContext context)
    {
        return new ThawResponse { Held = await freezes.ThawAsync(request.Token) };
    }

    public override async Task<GroupSnapshotRecord> SaveGroupSnapshot(GroupSnapshotRecord request, ServerCallContext context)
    {
        await groups.SaveAsync(request, Detached(context));
        return request;
    }

    public override Task<GroupSnapshotRecord> GetGroupSnapshot(GetGroupSnapshotRequest request, ServerCallContext context) =>
        Task.FromResult(groups.Get(request.GroupSnapshotId)
                        ?? (groups.IsUnreadable(request.GroupSnapshotId)
                            ? throw CsiErrors.FailedPrecondition($"the record of group snapshot {request.GroupSnapshotId} is unreadable and was set aside; " +
                                                                 "its members are kept (see `solar node-state`)")
                            : throw CsiErrors.NotFound($"group snapshot {request.GroupSnapshotId} not found")));

    public override Task<FindGroupSnapshotByNameResponse> FindGroupSnapshotByName(FindGroupSnapshotByNameRequest request, ServerCallContext context) =>
        Task.FromResult(groups.All().FirstOrDefault(g => g.Name == request.Name) is { } found
            ? new FindGroupSnapshotByNameResponse { Found = true, Group = found }
            : new FindGroupSnapshotByNameResponse());

    public override Task<DeleteGroupSnapshotRecordResponse> DeleteGroupSnapshotRecord(DeleteGroupSnapshotRecordRequest request, ServerCallContext context)
    {
        groups.Delete(request.GroupSnapshotId);
        return Task.FromResult(new DeleteGroupSnapshotRecordResponse());
    }

    private IMediaPool? OwningOrNull(string id)
    {
        try { return pools.Owning(id); }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { return null; }
    }

    // Storage work runs to completion even if the caller's deadline passes, so the in-flight slot is
    // released only when the disk is in a known state.
    private static CancellationToken Detached(ServerCallContext _) => CancellationToken.None;
}
