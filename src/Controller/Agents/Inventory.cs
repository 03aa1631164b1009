using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;

namespace SolarCsi.Controller.Agents;

/// <summary>Questions answered by asking the agents, since the controller keeps no database.</summary>
public sealed class Inventory(AgentDirectory directory)
{
    public static readonly TimeSpan ShortCall = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan LongCall = TimeSpan.FromMinutes(30);

    public static DateTime Deadline(TimeSpan span) => DateTime.UtcNow.Add(span);

    /// <summary>
    /// The volume of this name, or null when no agent has it. One name is one volume: a name that is being created
    /// somewhere (a create still running there, say before a controller restart) is ABORTED, and one whose record is
    /// unreadable somewhere is FAILED_PRECONDITION, rather than created a second time elsewhere.
    /// </summary>
    public async Task<VolumeInfo?> FindVolumeByNameAsync(string name, CancellationToken ct)
    {
        var answers = await OnEveryLiveAgentAsync(async (agent, node) =>
        {
            var answer = await agent.FindVolumeByNameAsync(new FindVolumeByNameRequest { Name = name }, deadline: Deadline(ShortCall), cancellationToken: ct);
            // A volume of that node, and the one that name hashes to there (in whichever of its pools).
            if (answer.Found)
                AgentReplies.RequireVolume(answer.Volume, node,
                    StorageId.TryParse(answer.Volume.VolumeId, out var id) ? StorageId.ForVolume(id.Media, id.Pool, node, name) : null);
            return answer;
        });
        if (answers.FirstOrDefault(f => f.Found) is { } found) return found.Volume;
        if (answers.FirstOrDefault(f => f.InProgress.Length > 0) is { } running) throw CsiErrors.Aborted(running.InProgress);
        if (answers.FirstOrDefault(f => f.Unreadable.Length > 0) is { } unreadable) throw CsiErrors.FailedPrecondition(unreadable.Unreadable);
        return null;
    }

    /// <summary>
    /// A node the controller has not heard from is no proof the id is wrong while agents may still be announcing
    /// themselves: UNAVAILABLE (retry) during the warm-up, NOT_FOUND after it — the same answer for every RPC.
    /// </summary>
    private void RequireKnown(StorageId id, string what)
    {
        if (directory.IsKnown(id.Node)) return;
        directory.RequireWarm(what);
        throw CsiErrors.NotFound($"{what} {id}: node {id.Node} is unknown to the controller");
    }

    /// <summary>The volume, or NOT_FOUND; UNAVAILABLE when its node cannot be asked.</summary>
    public async Task<VolumeInfo> GetVolumeAsync(StorageId id, CancellationToken ct)
    {
        RequireKnown(id, "volume");
        return AgentReplies.RequireVolume(await directory.ClientFor(id.Node).GetVolumeAsync(new GetVolumeRequest { VolumeId = id.ToString() },
            deadline: Deadline(ShortCall), cancellationToken: ct), id.Node, id);
    }

    public async Task<IReadOnlyList<VolumeInfo>> AllVolumesAsync(CancellationToken ct) =>
        (await OnEveryLiveAgentAsync(async (agent, node) =>
            (await agent.ListVolumesAsync(new ListVolumesRequest(), deadline: Deadline(ShortCall), cancellationToken: ct)).Volumes
            .Select(v => AgentReplies.RequireVolume(v, node)))).SelectMany(v => v).ToArray();

    public async Task<IReadOnlyList<SnapshotInfo>> AllSnapshotsAsync(CancellationToken ct) =>
        (await OnEveryLiveAgentAsync(async agent =>
            (await agent.ListSnapshotsAsync(new ListSnapshotsRequest(), deadline: Deadline(ShortCall), cancellationToken: ct)).Snapshots)).SelectMany(s => s).ToArray();

    /// <summary>Volumes published to <paramref name="nodeId"/> on every live agent, <paramref name="except"/> aside.</summary>
    public async Task<int> PublicationsOnAsync(string nodeId, IReadOnlyList<string> except, CancellationToken ct) =>
        (await OnEveryLiveAgentAsync(async agent => (await agent.CountPublicationsAsync(
            new CountPublicationsRequest { NodeId = nodeId, ExceptVolumeIds = { except } }, deadline: Deadline(ShortCall), cancellationToken: ct)).Count)).Sum();

    /// <summary>
    /// Asks every live agent at once: a cluster-wide question costs one agent round trip, not one per node. Results
    /// come back in the directory's order.
    /// </summary>
    private Task<T[]> OnEveryLiveAgentAsync<T>(Func<Agent.V1.Agent.AgentClient, Task<T>> call) =>
        OnEveryLiveAgentAsync((agent, _) => call(agent));

    /// <summary>The same, telling <paramref name="call"/> which node it asks (to check the answer belongs to it).</summary>
    private Task<T[]> OnEveryLiveAgentAsync<T>(Func<Agent.V1.Agent.AgentClient, string, Task<T>> call) =>
        Task.WhenAll(directory.Live().Select(agent => call(directory.ClientFor(agent), agent.NodeId)));

    public async Task<SnapshotInfo> GetSnapshotAsync(StorageId id, CancellationToken ct)
    {
        RequireKnown(id, "snapshot");
        var snapshots = await directory.ClientFor(id.Node).ListSnapshotsAsync(new ListSnapshotsRequest(), deadline: Deadline(ShortCall), cancellationToken: ct);
        return snapshots.Snapshots.FirstOrDefault(s => s.SnapshotId == id.ToString()) ?? throw CsiErrors.NotFound($"snapshot {id} not found");
    }

    /// <summary><paramref name="agents"/> with their pools as they answer now (an agent that cannot answer keeps its last heartbeat's).</summary>
    public async Task<IReadOnlyList<AgentState>> WithLivePoolsAsync(IReadOnlyList<AgentState> agents, CancellationToken ct) =>
        await Task.WhenAll(agents.Select(async agent =>
        {
            try
            {
                var answer = await directory.ClientFor(agent).GetCapacityAsync(new GetCapacityRequest(), deadline: Deadline(ShortCall), cancellationToken: ct);
                return agent with { Pools = answer.Pools.ToArray() };
            }
            catch (Grpc.Core.RpcException)
            {
                return agent;
            }
        }));

    /// <summary>Current pools of a media and name on the live agents that match.</summary>
    public async Task<IReadOnlyList<PoolInfo>> PoolsAsync(Func<AgentState, bool> where, string media, string pool, CancellationToken ct) =>
        (await Task.WhenAll(directory.Live().Where(where).Select(async agent =>
            (await directory.ClientFor(agent).GetCapacityAsync(new GetCapacityRequest { Pool = pool }, deadline: Deadline(ShortCall), cancellationToken: ct))
            .Pools.Where(p => p.Media == media && p.Name == pool))))
        .SelectMany(p => p).ToArray();
}
