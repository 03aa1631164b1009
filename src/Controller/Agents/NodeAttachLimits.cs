using System.Collections.Concurrent;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;

namespace SolarCsi.Controller.Agents;

/// <summary>
/// ControllerPublish beyond a node's attach limit is RESOURCE_EXHAUSTED. Deciding is serialised per node (the
/// callers wait, they are not aborted), so two publishes cannot both take the last slot; the publish itself is not:
/// a publish that was admitted holds a reservation until its agent has recorded it (or failed), and the count is
/// the agents' recorded publications plus those reservations. The agents are asked all at once, each counting its
/// own; publications of reserved volumes are left out of their answer so none is counted twice.
/// </summary>
public sealed class NodeAttachLimits(AgentDirectory directory, Inventory inventory)
{
    private sealed class NodeSlots
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public readonly HashSet<string> Reserved = new(StringComparer.Ordinal);
    }

    private readonly ConcurrentDictionary<string, NodeSlots> _perNode = new(StringComparer.Ordinal);

    public async Task<T> PublishWithinLimitAsync<T>(string volumeId, VolumeInfo volume, string nodeId, Func<Task<T>> publish, CancellationToken ct)
    {
        var limit = directory.Find(nodeId)?.MaxVolumes ?? 0;
        // A repeated publish takes no new slot. (ControllerPublish holds the volume's in-flight slot, so one volume is
        // never being published twice at once.)
        if (limit <= 0 || volume.Publications.Any(p => p.NodeId == nodeId)) return await publish();

        var slots = _perNode.GetOrAdd(nodeId, _ => new NodeSlots());
        await slots.Gate.WaitAsync(ct);
        try
        {
            string[] reserved;
            lock (slots.Reserved) reserved = [.. slots.Reserved];
            var attached = await inventory.PublicationsOnAsync(nodeId, [volumeId, .. reserved], ct) + reserved.Length;
            if (attached >= limit)
                throw CsiErrors.ResourceExhausted($"node {nodeId} already has {attached} volumes published, its limit is {limit}");
            lock (slots.Reserved) slots.Reserved.Add(volumeId);
        }
        finally
        {
            slots.Gate.Release();
        }
        try
        {
            return await publish();
        }
        finally
        {
            lock (slots.Reserved) slots.Reserved.Remove(volumeId);
        }
    }
}
