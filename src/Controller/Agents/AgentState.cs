using SolarCsi.Agent.V1;

namespace SolarCsi.Controller.Agents;

/// <summary>What the controller last heard from a node's agent.</summary>
/// <param name="HeardFrom">the address its last heartbeat came from (TCP); null over a unix socket.</param>
public sealed record AgentState(string NodeId, string Endpoint, IReadOnlyList<PoolInfo> Pools, IReadOnlyDictionary<string, string> Topology, DateTimeOffset LastSeen,
    int MaxVolumes = 0, string? CertificatePem = null, System.Net.IPAddress? HeardFrom = null)
{
    /// <summary>
    /// Where the node's NBD connections come from, as far as the controller knows the node: its agent's address and the
    /// address its heartbeats come from (over mutual TLS both are the node's own), or loopback when it speaks over unix
    /// sockets only (the node is on this machine).
    /// </summary>
    public IReadOnlyList<string> Addresses()
    {
        var addresses = new SortedSet<string>(StringComparer.Ordinal);
        if (SolarCsi.Core.Hosting.GrpcEndpoint.Parse(Endpoint) is { IsUnix: false, Address: { } agent } &&
            !agent.Equals(System.Net.IPAddress.Any) && !agent.Equals(System.Net.IPAddress.IPv6Any))
            addresses.Add(Canonical(agent));
        if (HeardFrom is not null) addresses.Add(Canonical(HeardFrom));
        if (addresses.Count == 0) addresses.UnionWith(["127.0.0.1", "::1"]);
        return [.. addresses];
    }

    private static string Canonical(System.Net.IPAddress address) => (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();
}
