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

    public async Task<VolumeInfo?> FindVolumeByNameAsync(string name, CancellationToken ct)
    {
        foreach (var agent in directory.Live())
        {
            var found = await directory.ClientFor(agent).FindVolumeByNameAsync(new FindVolumeByNameRequest { Name = name },
                deadline: Deadline(ShortCall), cancellationToken: ct);
            if (found.Found) return found.Volume;
        }
        return null;
    }

    /// <summary>The volume, or NOT_FOUND; UNAVAILABLE when its node cannot be asked.</summary>
    public async Task<VolumeInfo> GetVolumeAsync(StorageId id, CancellationToken ct)
    {
        if (!directory.IsKnown(id.Node)) throw CsiErrors.NotFound($"volume {id}: node {id.Node} is unknown to the controller");
        return await directory.ClientFor(id.Node).GetVolumeAsync(new GetVolumeRequest { VolumeId = id.ToString() },
            deadline: Deadline(ShortCall), cancellationToken: ct);
    }

    public async Task<IReadOnlyList<VolumeInfo>> AllVolumesAsync(CancellationToken ct) =>
        (await OnEveryLiveAgentAsync(async agent =>
            (await agent.ListVolumesAsync(new ListVolumesRequest(), deadline: Deadline(ShortCall), cancellationToken: ct)).Volumes)).SelectMany(v => v).ToArray();

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
        Task.WhenAll(directory.Live().Select(agent => call(directory.ClientFor(agent))));

    public async Task<SnapshotInfo> GetSnapshotAsync(StorageId id, CancellationToken ct)
    {
        if (!directory.IsKnown(id.Node)) throw CsiErrors.NotFound($"snapshot {id}: node {id.Node} is unknown to the controller");
        var snapshots = await directory.ClientFor(id.Node).ListSnapshotsAsync(new ListSnapshotsRequest(), deadline: Deadline(ShortCall), cancellationToken: ct);
        return snapshots.Snapshots.FirstOrDefault(s => s.SnapshotId == id.ToString()) ?? throw CsiErrors.NotFound($"snapshot {id} not found");
    }

    /// <summary>Current pools of a media and name on the live agents that match.</summary>
    public async Task<IReadOnlyList<PoolInfo>> PoolsAsync(Func<AgentState, bool> where, string media, string pool, CancellationToken ct)
    {
        var pools = new List<PoolInfo>();
        foreach (var agent in directory.Live().Where(where))
        {
            var answer = await directory.ClientFor(agent).GetCapacityAsync(new GetCapacityRequest { Pool = pool }, deadline: Deadline(ShortCall), cancellationToken: ct);
            pools.AddRange(answer.Pools.Where(p => p.Media == media && p.Name == pool));
        }
        return pools;
    }
}
