using System.Collections.Concurrent;
using Grpc.Net.Client;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Hosting;
using AgentClient = SolarCsi.Agent.V1.Agent.AgentClient;

namespace SolarCsi.Controller.Agents;

/// <summary>
/// The agents that announced themselves, in memory only: after a controller restart the map refills within one
/// heartbeat. An agent silent for longer than the timeout is treated as unavailable, never as gone.
/// </summary>
/// <param name="tls">the controller's certificates: a TCP agent is then reached over mutual TLS and must prove it is the
/// node it announced itself as.</param>
public sealed class AgentDirectory(TimeProvider clock, TimeSpan timeout, IReadOnlyCollection<string>? allNodes = null,
    SolarCsi.Core.Hosting.Tls.ClusterTls? tls = null) : IDisposable
{
    private readonly ConcurrentDictionary<string, AgentState> _agents = new(StringComparer.Ordinal);
    private readonly DateTimeOffset _startedAt = clock.GetUtcNow();

    /// <summary>
    /// After a restart the controller knows no agent. Until every live agent has had time to announce itself, an
    /// absent node may only be unheard-from, so answers that depend on "not found anywhere" must wait.
    /// </summary>
    public TimeSpan WarmUp => timeout / 2;
    public bool WarmingUp => clock.GetUtcNow() - _startedAt < WarmUp && !(allNodes is { Count: > 0 } && allNodes.All(IsKnown));

    public void RequireWarm(string what)
    {
        if (WarmingUp)
            throw CsiErrors.Unavailable($"the controller started moments ago and is still hearing from its agents; retry {what} shortly");
    }
    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    /// <param name="certificatePem">the certificate the node proved itself with (mTLS), kept to seal its NBD keys to.</param>
    /// <param name="heardFrom">the address the announcement came from (TCP), kept as one the node's NBD connections may come from.</param>
    public void Record(AgentAnnouncement a, string? certificatePem = null, System.Net.IPAddress? heardFrom = null)
    {
        if (_agents.TryGetValue(a.NodeId, out var previous) && previous.Endpoint != a.Endpoint &&
            _channels.TryRemove(previous.NodeId + " " + previous.Endpoint, out var stale))
            stale.Dispose();
        _agents[a.NodeId] = new AgentState(a.NodeId, a.Endpoint, a.Pools.ToArray(), new Dictionary<string, string>(a.Topology), clock.GetUtcNow(),
            a.MaxVolumes, certificatePem, heardFrom);
    }

    public bool IsKnown(string nodeId) => _agents.ContainsKey(nodeId);

    public AgentState? Find(string nodeId) => _agents.GetValueOrDefault(nodeId);

    public IReadOnlyList<AgentState> Live()
    {
        var now = clock.GetUtcNow();
        return _agents.Values.Where(a => now - a.LastSeen <= timeout).OrderBy(a => a.NodeId, StringComparer.Ordinal).ToArray();
    }

    public AgentClient ClientFor(string nodeId)
    {
        if (!_agents.TryGetValue(nodeId, out var state))
            throw CsiErrors.Unavailable($"node {nodeId} has not announced itself to the controller");
        if (clock.GetUtcNow() - state.LastSeen > timeout)
            throw CsiErrors.Unavailable($"node {nodeId} has not been heard from for {(clock.GetUtcNow() - state.LastSeen).TotalSeconds:0} s");
        return ClientFor(state);
    }

    // Keyed by node and endpoint: the same address announced by another node must not reuse a channel that proved the first.
    public AgentClient ClientFor(AgentState state) =>
        new(_channels.GetOrAdd(state.NodeId + " " + state.Endpoint, _ => GrpcChannels.Create(GrpcEndpoint.Parse(state.Endpoint),
            tls is null ? null : (tls, SolarCsi.Core.Hosting.Tls.ClusterTls.NodeIdentity(state.NodeId)))));

    public void Dispose()
    {
        foreach (var channel in _channels.Values) channel.Dispose();
    }
}
