using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Hosting;

namespace SolarCsi.SanityTests;

/// <summary>
/// Each endpoint of a plugin answers only its own services (today each has its own web host): the node's CSI
/// services (stage, publish: root on the node) must never answer on the agent endpoint, which the controller reaches
/// over the network, nor the agent API on kubelet's socket; the same holds for the controller's CSI and registry
/// endpoints, and the metrics listener serves nothing but /metrics and /healthz.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class EndpointSeparationTests(ClusterFixture fx)
{
    [Fact]
    public async Task EveryEndpointAnswersOnlyItsOwnServices()
    {
        var nodeDir = fx.A.Directory;
        using var agentChannel = fx.Cluster.AgentChannel(fx.A.NodeId);
        using var nodeCsiChannel = GrpcChannels.Create(GrpcEndpoint.Parse($"unix://{nodeDir}/csi.sock"));
        using var controllerCsiChannel = GrpcChannels.Create(GrpcEndpoint.Parse($"unix://{fx.Cluster.Root}/controller/csi.sock"));
        using var registryChannel = fx.Cluster.RegistryChannel(fx.A.NodeId);

        // Where each service belongs, it answers.
        await new Csi.V1.Node.NodeClient(nodeCsiChannel).NodeGetCapabilitiesAsync(new NodeGetCapabilitiesRequest());
        await new Agent.V1.Agent.AgentClient(agentChannel).GetCapacityAsync(new Agent.V1.GetCapacityRequest());
        await new Csi.V1.Controller.ControllerClient(controllerCsiChannel).ControllerGetCapabilitiesAsync(new ControllerGetCapabilitiesRequest());

        // Anywhere else it does not exist.
        await Expect.Code(StatusCode.Unimplemented, async () =>
            await new Csi.V1.Node.NodeClient(agentChannel).NodeGetCapabilitiesAsync(new NodeGetCapabilitiesRequest()));
        await Expect.Code(StatusCode.Unimplemented, async () =>
            await new Identity.IdentityClient(agentChannel).ProbeAsync(new ProbeRequest()));
        await Expect.Code(StatusCode.Unimplemented, async () =>
            await new Agent.V1.Agent.AgentClient(nodeCsiChannel).GetCapacityAsync(new Agent.V1.GetCapacityRequest()));
        await Expect.Code(StatusCode.Unimplemented, async () =>
            await new Csi.V1.Controller.ControllerClient(registryChannel).ControllerGetCapabilitiesAsync(new ControllerGetCapabilitiesRequest()));
        await Expect.Code(StatusCode.Unimplemented, async () =>
            await new Agent.V1.Registry.RegistryClient(controllerCsiChannel).HeartbeatAsync(new Agent.V1.AgentAnnouncement()));

        using var http = new HttpClient();
        var metrics = new Uri(fx.A.MetricsUrl);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync(metrics)).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync(new Uri(metrics, "/healthz"))).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync(new Uri(metrics, "/csi.v1.Node/NodeGetCapabilities"))).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.PostAsync(new Uri(metrics, "/solar.agent.v1.Agent/GetCapacity"), null)).StatusCode);
    }
}
