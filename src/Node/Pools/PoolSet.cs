using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Processes;

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

    /// <summary>Why <paramref name="pool"/> cannot take volumes on this node now (a host tool is missing), or null.
    /// Asked afresh each time, so installing the package brings the pool back at the next heartbeat.</summary>
    public string? Unavailable(IMediaPool pool) =>
        HostTools.MissingOf(pool.RequiredTools) is { Count: > 0 } missing
            ? $"{pool.Media} pool '{pool.Name}' on node {NodeId} needs {HostTools.Describe(missing)}, not installed"
            : null;

    /// <summary>The pool as the controller sees it: an unavailable pool has no capacity and says why.</summary>
    public PoolInfo Describe(IMediaPool pool)
    {
        var info = pool.Describe();
        if (Unavailable(pool) is not { } reason) return info;
        return new PoolInfo(info) { TotalBytes = 0, FreeBytes = 0, LargestFreeBytes = 0, Unavailable = reason };
    }

    /// <summary>Refuses work on a pool that lacks a host tool with FAILED_PRECONDITION naming the tool and package.</summary>
    public IMediaPool RequireAvailable(IMediaPool pool) =>
        Unavailable(pool) is { } reason ? throw CsiErrors.FailedPrecondition(reason) : pool;
}
