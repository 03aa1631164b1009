using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;

namespace SolarCsi.Node.Pools;

/// <summary>This node's pools by name, and routing of an id to the pool that holds it.</summary>
public sealed class PoolSet(string nodeId, IReadOnlyList<IMediaPool> pools)
{
    public string NodeId { get; } = nodeId;
    public IReadOnlyList<IMediaPool> All { get; } = pools;

    public IMediaPool? Find(string media, string name) => All.FirstOrDefault(p => p.Media == media && p.Name == name);

    /// <summary>The pool holding this id, or NOT_FOUND when the id belongs elsewhere.</summary>
    public IMediaPool Owning(string id)
    {
        if (!StorageId.TryParse(id, out var parsed) || parsed.Node != NodeId)
            throw CsiErrors.NotFound($"{id} does not live on node {NodeId}");
        return All.FirstOrDefault(p => p.Name == parsed.Pool && p.Media == parsed.Media)
               ?? throw CsiErrors.NotFound($"{id}: node {NodeId} has no {parsed.Media} pool '{parsed.Pool}'");
    }
}
