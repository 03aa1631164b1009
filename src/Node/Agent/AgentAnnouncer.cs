using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Hosting;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Agent;

/// <summary>Tells the controller, periodically, that this agent is alive, where to reach it and what its pools hold.</summary>
public sealed class AgentAnnouncer(NodeOptions options, PoolSet pools, ILogger<AgentAnnouncer> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.ControllerEndpoint is null) return;
        using var channel = GrpcChannels.Create(options.ControllerEndpoint,
            options.Tls is { } tls ? (tls, SolarCsi.Core.Hosting.Tls.ClusterTls.ControllerIdentity) : null);
        var registry = new Registry.RegistryClient(channel);
        var interval = options.HeartbeatInterval;
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var announcement = new AgentAnnouncement
                {
                    NodeId = options.NodeId, Endpoint = options.AgentEndpoint.ToString(), Version = "1",
                    MaxVolumes = AttachLimit.Effective(options.MaxVolumes),
                };
                announcement.Pools.AddRange(pools.All.Select(pools.Describe));
                announcement.Topology.Add(options.Topology);
                await registry.HeartbeatAsync(announcement, deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: stoppingToken);
                if (failing) logger.LogInformation("controller at {Endpoint} reachable again", options.ControllerEndpoint);
                failing = false;
            }
            catch (RpcException e) when (!stoppingToken.IsCancellationRequested)
            {
                if (!failing) logger.LogWarning("cannot announce to controller at {Endpoint}: {Status}", options.ControllerEndpoint, e.Status.Detail);
                failing = true;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Describing a pool failed (a full or broken state filesystem, a tool that hung): the node stays
                // silent this round and tries again, instead of never announcing itself again.
                logger.LogError(e, "could not build this node's announcement; retrying in {Interval}", interval);
                failing = true;
            }
            try { await Task.Delay(interval, stoppingToken); }
            catch (OperationCanceledException) { break; }
        }
    }
}
