using System.Collections.Concurrent;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;

namespace SolarCsi.Controller.Agents;

/// <summary>
/// ControllerPublish beyond a node's attach limit is RESOURCE_EXHAUSTED. Publishes to one node are serialised
/// (they wait, they are not aborted) so two of them cannot both take the last slot; publishes to different
/// nodes run in parallel. The count is asked from the agents, which record every publication (each counts its own,
/// all at once).
/// </summary>
public sealed class NodeAttachLimits(AgentDirectory directory, Inventory inventory)
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _perNode = new(StringComparer.Ordinal);

    public async Task<T> PublishWithinLimitAsync<T>(string volumeId, VolumeInfo volume, string nodeId, Func<Task<T>> publish, CancellationToken ct)
    {
        var gate = _perNode.GetOrAdd(nodeId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            var limit = directory.Find(nodeId)?.MaxVolumes ?? 0;
            // A repeated publish takes no new slot.
            if (limit > 0 && volume.Publications.All(p => p.NodeId != nodeId))
            {
                var attached = await inventory.PublicationsOnAsync(nodeId, volumeId, ct);
                if (attached >= limit)
                    throw CsiErrors.ResourceExhausted($"node {nodeId} already has {attached} volumes published, its limit is {limit}");
            }
            return await publish();
        }
        finally
        {
            gate.Release();
        }
    }
}
