using Csi.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using A = SolarCsi.Agent.V1;
using SolarCsi.Controller.Agents;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Validation;
using GroupControllerBase = Csi.V1.GroupController.GroupControllerBase;

namespace SolarCsi.Controller.Csi;

/// <summary>
/// Group snapshots: one crash-consistent point in time across several volumes, wherever they live. Every writer of
/// every member is frozen first (fsfreeze on the node that mounts it, under a lease that thaws by itself if this
/// controller dies), then each member is snapshotted by the agent that owns it, then everything is thawed. The
/// instant at which the last freeze took hold is the group's point in time.
/// </summary>
public sealed class GroupControllerService(AgentDirectory directory, Inventory inventory, InFlightTracker inFlight, ControllerOptions options,
    ILogger<GroupControllerService> logger) : GroupControllerBase
{
    private static CancellationToken Work => CancellationToken.None;

    public override Task<GroupControllerGetCapabilitiesResponse> GroupControllerGetCapabilities(GroupControllerGetCapabilitiesRequest request, ServerCallContext context) =>
        Task.FromResult(new GroupControllerGetCapabilitiesResponse
        {
            Capabilities =
            {
                new GroupControllerServiceCapability
                {
                    Rpc = new GroupControllerServiceCapability.Types.RPC { Type = GroupControllerServiceCapability.Types.RPC.Types.Type.CreateDeleteGetVolumeGroupSnapshot },
                },
            },
        });

    public override async Task<CreateVolumeGroupSnapshotResponse> CreateVolumeGroupSnapshot(CreateVolumeGroupSnapshotRequest request, ServerCallContext context)
    {
        var name = NameRules.RequireCsiName(request.Name);
        if (request.SourceVolumeIds.Count == 0) throw CsiErrors.InvalidArgument("source_volume_ids is required");
        if (request.Parameters.Count > 0) throw CsiErrors.InvalidArgument($"unknown parameter '{request.Parameters.Keys.First()}' (group snapshots take none)");
        var sources = request.SourceVolumeIds.Select(v => StorageId.ParseVolume(v, "source_volume_ids")).DistinctBy(v => v.ToString())
            .OrderBy(v => v.ToString(), StringComparer.Ordinal).ToArray();
        using var slot = inFlight.Acquire("group:" + name, "CreateVolumeGroupSnapshot");
        directory.RequireWarm("CreateVolumeGroupSnapshot");

        if (await FindByNameAsync(name) is { } existing)
        {
            if (!existing.SourceVolumeIds.Order(StringComparer.Ordinal).SequenceEqual(sources.Select(s => s.ToString())))
                throw CsiErrors.AlreadyExists($"group snapshot '{name}' exists ({existing.GroupSnapshotId}) with other source volumes");
            return new CreateVolumeGroupSnapshotResponse { GroupSnapshot = await ToCsiAsync(existing) };
        }

        var volumes = new List<A.VolumeInfo>();
        foreach (var source in sources)
        {
            // Checked before anything is frozen. Each pool says whether it snapshots (an LVM pool only with a thin pool).
            if (directory.Find(source.Node)?.Pools.FirstOrDefault(p => p.Media == source.Media && p.Name == source.Pool) is { SupportsSnapshots: false })
                throw CsiErrors.InvalidArgument($"volume {source} is in {source.Media} pool '{source.Pool}', which cannot take snapshots");
            volumes.Add(await inventory.GetVolumeAsync(source, Work));
        }
        // A member whose snapshot freezes it (LVM thin) stays out of the group's freeze and is cut last, while every
        // other member is still frozen: its cut then holds nothing the others' cuts lack. Two such members could not
        // be one point in time: the first thaws with its own snapshot before the second is cut.
        var selfFreezing = sources.Where(s => SolarCsi.Core.Media.MediaCatalog.Of(s.Media).SnapshotFreezesItself).ToArray();
        if (selfFreezing.Length > 1)
            throw CsiErrors.FailedPrecondition($"a group snapshot can hold at most one {string.Join("/", selfFreezing.Select(s => s.Media).Distinct())} volume " +
                $"({selfFreezing.Length} given): its snapshot freezes its filesystem itself and thaws it when done, so two of them are not one point in time");
        var home = sources[0];
        var groupId = StorageId.ForGroupSnapshot(home.Media, home.Pool, home.Node, name).ToString();

        var members = new List<A.SnapshotInfo>();
        await using (var freeze = new WriterFreeze(directory, groupId, options.WriterFreezeLease, logger))
        {
            try
            {
                var frozen = sources.Zip(volumes).Where(m => !selfFreezing.Contains(m.First)).ToArray();
                await freeze.FreezeAsync(WriterFreeze.Sites([.. frozen.Select(m => m.First)], [.. frozen.Select(m => m.Second)]), Work);
                foreach (var source in sources.Except(selfFreezing).Concat(selfFreezing))
                {
                    // Named after the group and the source, so a retried create finds the members already cut.
                    var member = new A.CreateSnapshotRequest
                    {
                        Name = "group-member-" + NameHash.Of($"{name}/{source}"), SourceVolumeId = source.ToString(), GroupSnapshotId = groupId,
                    };
                    members.Add(await directory.ClientFor(source.Node).CreateSnapshotAsync(member, deadline: Inventory.Deadline(Inventory.LongCall), cancellationToken: Work));
                }
                if (await freeze.ThawAsync() is [_, ..] lost)
                    throw CsiErrors.Aborted($"the writers on {string.Join(", ", lost)} were not held for the whole group's cut (the freeze's lease ran out " +
                        "or the node plugin restarted); no member was kept, retry");
            }
            catch
            {
                // No group without all its members: the ones already cut go, or they would belong to a group nobody can name.
                foreach (var cut in members)
                {
                    try
                    {
                        await directory.ClientFor(StorageId.ParseSnapshot(cut.SnapshotId).Node).DeleteSnapshotAsync(
                            new A.DeleteSnapshotRequest { SnapshotId = cut.SnapshotId, GroupSnapshotId = groupId },
                            deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
                    }
                    catch (RpcException) { /* reported by the create's own error; a retry with the same name finds and reuses it */ }
                }
                throw;
            }
        }

        var record = new A.GroupSnapshotRecord { GroupSnapshotId = groupId, Name = name, Created = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(DateTime.UtcNow) };
        record.SnapshotIds.AddRange(members.Select(m => m.SnapshotId));
        record.SourceVolumeIds.AddRange(sources.Select(s => s.ToString()));
        await directory.ClientFor(home.Node).SaveGroupSnapshotAsync(record, deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
        return new CreateVolumeGroupSnapshotResponse { GroupSnapshot = ToCsi(record, members) };
    }

    public override async Task<GetVolumeGroupSnapshotResponse> GetVolumeGroupSnapshot(GetVolumeGroupSnapshotRequest request, ServerCallContext context)
    {
        var record = await GetRecordAsync(request.GroupSnapshotId, request.SnapshotIds)
                     ?? throw CsiErrors.NotFound($"group snapshot {StorageId.Printable(request.GroupSnapshotId)} not found");
        return new GetVolumeGroupSnapshotResponse { GroupSnapshot = await ToCsiAsync(record) };
    }

    public override async Task<DeleteVolumeGroupSnapshotResponse> DeleteVolumeGroupSnapshot(DeleteVolumeGroupSnapshotRequest request, ServerCallContext context)
    {
        using var slot = StorageId.TryParse(request.GroupSnapshotId, out var id) ? inFlight.Acquire(id.ToString(), "DeleteVolumeGroupSnapshot") : null;
        if (await GetRecordAsync(request.GroupSnapshotId, request.SnapshotIds) is not { } record) return new DeleteVolumeGroupSnapshotResponse();
        foreach (var member in record.SnapshotIds.Select(s => StorageId.ParseSnapshot(s)))
        {
            if (!directory.IsKnown(member.Node)) throw CsiErrors.Unavailable($"node {member.Node}, which holds member {member}, has not announced itself");
            await directory.ClientFor(member.Node).DeleteSnapshotAsync(new A.DeleteSnapshotRequest { SnapshotId = member.ToString(), GroupSnapshotId = record.GroupSnapshotId },
                deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
        }
        // The record goes last: a delete cut short is found and finished by the retry.
        await directory.ClientFor(id!.Node).DeleteGroupSnapshotRecordAsync(new A.DeleteGroupSnapshotRecordRequest { GroupSnapshotId = record.GroupSnapshotId },
            deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
        return new DeleteVolumeGroupSnapshotResponse();
    }

    /// <summary>The record, null when there is none; INVALID_ARGUMENT when the CO's list of members is not the group's.</summary>
    private async Task<A.GroupSnapshotRecord?> GetRecordAsync(string groupSnapshotId, IReadOnlyCollection<string> snapshotIds)
    {
        if (string.IsNullOrEmpty(groupSnapshotId)) throw CsiErrors.InvalidArgument("group_snapshot_id is required");
        if (!StorageId.TryParse(groupSnapshotId, out var id) || !id.IsGroupSnapshot) return null;
        if (!directory.IsKnown(id.Node))
        {
            directory.RequireWarm("a group snapshot lookup");
            throw CsiErrors.Unavailable($"node {id.Node}, which keeps group snapshot {id}, has not announced itself");
        }
        A.GroupSnapshotRecord record;
        try
        {
            record = await directory.ClientFor(id.Node).GetGroupSnapshotAsync(new A.GetGroupSnapshotRequest { GroupSnapshotId = id.ToString() },
                deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
        if (snapshotIds.Count > 0 && !snapshotIds.Order(StringComparer.Ordinal).SequenceEqual(record.SnapshotIds.Order(StringComparer.Ordinal)))
            throw CsiErrors.InvalidArgument($"snapshot_ids do not match the members of group snapshot {id}");
        return record;
    }

    private async Task<A.GroupSnapshotRecord?> FindByNameAsync(string name)
    {
        foreach (var agent in directory.Live())
        {
            var found = await directory.ClientFor(agent).FindGroupSnapshotByNameAsync(new A.FindGroupSnapshotByNameRequest { Name = name },
                deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: Work);
            if (found.Found) return found.Group;
        }
        return null;
    }

    private async Task<VolumeGroupSnapshot> ToCsiAsync(A.GroupSnapshotRecord record)
    {
        var members = new List<A.SnapshotInfo>();
        foreach (var id in record.SnapshotIds) members.Add(await inventory.GetSnapshotAsync(StorageId.ParseSnapshot(id), Work));
        return ToCsi(record, members);
    }

    private static VolumeGroupSnapshot ToCsi(A.GroupSnapshotRecord record, IEnumerable<A.SnapshotInfo> members)
    {
        var group = new VolumeGroupSnapshot { GroupSnapshotId = record.GroupSnapshotId, CreationTime = record.Created, ReadyToUse = true };
        group.Snapshots.AddRange(members.Select(m =>
        {
            var snapshot = CsiMapping.ToCsi(m);
            snapshot.GroupSnapshotId = record.GroupSnapshotId;
            return snapshot;
        }));
        return group;
    }
}
