using Csi.V1;
using SolarCsi.Agent.V1;
using SolarCsi.Controller.Agents;
using SolarCsi.Core.Errors;

namespace SolarCsi.Controller.Placement;

public sealed record PlacementChoice(AgentState Agent, PoolInfo Pool);

/// <summary>
/// Picks where a new volume lives: a live agent with a pool of the wanted media and name, with room, inside the
/// requisite topology; preferred topologies first, in the CO's order, then the most free space.
/// </summary>
public static class PoolPlacement
{
    public static PlacementChoice Choose(IReadOnlyList<AgentState> agents, string media, string pool, long bytes, TopologyRequirement? topology)
    {
        if (agents.Count == 0) throw CsiErrors.Unavailable("no storage agent has announced itself yet");
        var withPool = agents
            .SelectMany(a => a.Pools.Where(p => p.Media == media && p.Name == pool).Select(p => new PlacementChoice(a, p)))
            .ToArray();
        if (withPool.Length == 0) throw CsiErrors.InvalidArgument($"no node has a {media} pool named '{pool}'");
        var allowed = withPool.Where(c => Allowed(c.Agent, topology)).ToArray();
        if (allowed.Length == 0) throw CsiErrors.ResourceExhausted($"no {media} pool '{pool}' is accessible from the requested topology");
        // A pool whose node lacks a host tool is not offered; when no other is, say which tool and package.
        if (allowed.All(c => c.Pool.Unavailable.Length > 0))
            throw CsiErrors.FailedPrecondition(string.Join("; ", allowed.Select(c => c.Pool.Unavailable)));
        allowed = allowed.Where(c => c.Pool.Unavailable.Length == 0).ToArray();
        var fitting = allowed.Where(c => c.Pool.LargestFreeBytes >= bytes).ToArray();
        if (fitting.Length == 0)
            throw CsiErrors.ResourceExhausted($"no {media} pool '{pool}' can hold {bytes} bytes (largest possible: {allowed.Max(c => c.Pool.LargestFreeBytes)})");
        return fitting
            .OrderBy(c => PreferenceRank(c.Agent, topology))
            .ThenByDescending(c => c.Pool.FreeBytes)
            .ThenBy(c => c.Agent.NodeId, StringComparer.Ordinal)
            .First();
    }

    public static bool Allowed(AgentState agent, TopologyRequirement? topology) => Allowed(agent.Topology, topology);

    /// <summary>Whether a place with these topology labels lies inside the requisite topology.</summary>
    public static bool Allowed(IReadOnlyDictionary<string, string> labels, TopologyRequirement? topology) =>
        topology is null || topology.Requisite.Count == 0 || topology.Requisite.Any(t => Matches(labels, t));

    private static int PreferenceRank(AgentState agent, TopologyRequirement? topology)
    {
        if (topology is null) return 0;
        for (var i = 0; i < topology.Preferred.Count; i++)
            if (Matches(agent, topology.Preferred[i])) return i;
        return int.MaxValue;
    }

    /// <summary>A segment matches when every key it names has the agent's value.</summary>
    public static bool Matches(AgentState agent, Topology segment) => Matches(agent.Topology, segment);

    private static bool Matches(IReadOnlyDictionary<string, string> labels, Topology segment) =>
        segment.Segments.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
