using SolarCsi.Agent.V1;

namespace SolarCsi.Controller.Agents;

/// <summary>What the controller last heard from a node's agent.</summary>
public sealed record AgentState(string NodeId, string Endpoint, IReadOnlyList<PoolInfo> Pools, IReadOnlyDictionary<string, string> Topology, DateTimeOffset LastSeen,
    int MaxVolumes = 0, string? CertificatePem = null);
