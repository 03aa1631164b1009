using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using SolarCsi.Agent.V1;
using SolarCsi.Controller;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Local;

namespace SolarCsi.Tests.Security;

/// <summary>
/// Strangers on the network get nothing from the control plane's TCP endpoints: the registry (real, as the controller
/// builds it) and a server with the agent API's admission rule, over mutual TLS on 127.0.0.1, with certificates made
/// by `solar certs`' own code. Each stranger's attempt is refused and changes nothing.
/// </summary>
public sealed class ControlPlaneTlsTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private string Dir(string name) => Path.Combine(_dir.Path, name);
    private ControllerPlane _plane = null!;
    private WebApplication _registry = null!;
    private GrpcEndpoint _registryEndpoint = null!;

    public async Task InitializeAsync()
    {
        CertificateAuthority.Create(Dir("ca"), TimeSpan.FromDays(1));
        CertificateAuthority.Create(Dir("other-ca"), TimeSpan.FromDays(1));
        CertificateAuthority.Issue(Dir("ca"), ClusterTls.ControllerIdentity, Dir("controller"), TimeSpan.FromDays(1));
        CertificateAuthority.Issue(Dir("ca"), ClusterTls.NodeIdentity("node-a"), Dir("node-a"), TimeSpan.FromDays(1));
        CertificateAuthority.Issue(Dir("ca"), ClusterTls.NodeIdentity("node-b"), Dir("node-b"), TimeSpan.FromDays(1));
        CertificateAuthority.Issue(Dir("other-ca"), ClusterTls.NodeIdentity("node-a"), Dir("impostor-a"), TimeSpan.FromDays(1));

        _registryEndpoint = GrpcEndpoint.Parse($"tcp://127.0.0.1:{LocalCluster.FreePort()}");
        var options = new ControllerOptions("x.csi.dev", GrpcEndpoint.Parse($"unix://{Dir("csi.sock")}"), _registryEndpoint, TimeSpan.FromSeconds(20),
            Tls: ClusterTls.Load(Dir("controller")));
        _plane = new ControllerPlane(options);
        _registry = _plane.BuildRegistry(Serilog.Core.Logger.None);
        await _registry.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _registry.StopAsync();
        await _registry.DisposeAsync();
        _plane.Dispose();
        _dir.Dispose();
    }

    private static AgentAnnouncement Heartbeat(string node) => new() { NodeId = node, Endpoint = "tcp://127.0.0.1:9" };

    private async Task<StatusCode> AnnounceAsync(GrpcChannel channel, string node)
    {
        try
        {
            await new Registry.RegistryClient(channel).HeartbeatAsync(Heartbeat(node), deadline: DateTime.UtcNow.AddSeconds(10));
            return StatusCode.OK;
        }
        catch (RpcException e) { return e.StatusCode; }
    }

    private GrpcChannel Stranger(X509Certificate2? certificate) => Security.Stranger.Channel(_registryEndpoint.Port, certificate);

    [Fact]
    public async Task OnlyANodesOwnCertificateAnnouncesThatNode()
    {
        using (var plaintext = GrpcChannels.Create(_registryEndpoint))
            Assert.NotEqual(StatusCode.OK, await AnnounceAsync(plaintext, "node-a"));
        using (var noCertificate = Stranger(null))
            Assert.NotEqual(StatusCode.OK, await AnnounceAsync(noCertificate, "node-a"));
        using (var otherCa = Stranger(ClusterTls.Load(Dir("impostor-a")).Own))
            Assert.NotEqual(StatusCode.OK, await AnnounceAsync(otherCa, "node-a"));
        // The controller's own certificate is not a node's.
        using (var controller = Stranger(ClusterTls.Load(Dir("controller")).Own))
            Assert.NotEqual(StatusCode.OK, await AnnounceAsync(controller, "node-a"));
        using (var nodeB = GrpcChannels.Create(_registryEndpoint, (ClusterTls.Load(Dir("node-b")), ClusterTls.ControllerIdentity)))
            Assert.Equal(StatusCode.PermissionDenied, await AnnounceAsync(nodeB, "node-a"));
        Assert.False(_plane.Directory.IsKnown("node-a"));

        using var nodeA = GrpcChannels.Create(_registryEndpoint, (ClusterTls.Load(Dir("node-a")), ClusterTls.ControllerIdentity));
        Assert.Equal(StatusCode.OK, await AnnounceAsync(nodeA, "node-a"));
        Assert.True(_plane.Directory.IsKnown("node-a"));
    }

    [Fact]
    public async Task AServerThatIsNotWhoTheClientExpectsIsNotTalkedTo()
    {
        // A node expecting the controller is served by a certificate of node-b (someone who announced node-b's
        // address, or node-b itself): the client refuses before sending anything.
        var port = LocalCluster.FreePort();
        var endpoint = GrpcEndpoint.Parse($"tcp://127.0.0.1:{port}");
        var options = new ControllerOptions("x.csi.dev", GrpcEndpoint.Parse($"unix://{Dir("csi2.sock")}"), endpoint, TimeSpan.FromSeconds(20),
            Tls: ClusterTls.Load(Dir("node-b")));
        using var plane = new ControllerPlane(options);
        await using var impostor = plane.BuildRegistry(Serilog.Core.Logger.None);
        await impostor.StartAsync();
        try
        {
            using var nodeA = GrpcChannels.Create(endpoint, (ClusterTls.Load(Dir("node-a")), ClusterTls.ControllerIdentity));
            Assert.NotEqual(StatusCode.OK, await AnnounceAsync(nodeA, "node-a"));
            Assert.False(plane.Directory.IsKnown("node-a"));
        }
        finally
        {
            await impostor.StopAsync();
        }
    }

    [Fact]
    public async Task TheAgentApisRuleAdmitsTheControllerOnly()
    {
        var endpoint = GrpcEndpoint.Parse($"tcp://127.0.0.1:{LocalCluster.FreePort()}");
        var nodeTls = ClusterTls.Load(Dir("node-a"));
        // The node's agent server admits exactly what solar-node's Program gives it: the controller's identity.
        await using var server = GrpcServer.Build(endpoint, Serilog.Core.Logger.None, s => { },
            app => app.MapGrpcService<Probe>(), (nodeTls, id => id == ClusterTls.ControllerIdentity));
        await server.StartAsync();
        try
        {
            using var fromNodeB = GrpcChannels.Create(endpoint, (ClusterTls.Load(Dir("node-b")), ClusterTls.NodeIdentity("node-a")));
            Assert.NotEqual(StatusCode.OK, await CallAsync(fromNodeB));
            using var fromController = GrpcChannels.Create(endpoint, (ClusterTls.Load(Dir("controller")), ClusterTls.NodeIdentity("node-a")));
            Assert.Equal(StatusCode.OK, await CallAsync(fromController));
        }
        finally
        {
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task ARotatedCertificateIsServedFromTheNextConnectionOn()
    {
        var before = await ServedThumbprintAsync();
        CertificateAuthority.Issue(Dir("ca"), ClusterTls.ControllerIdentity, Dir("controller"), TimeSpan.FromDays(2));
        var after = await ServedThumbprintAsync();
        Assert.NotEqual(before, after);
        Assert.Equal(X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(Dir("controller"), ClusterTls.CertFile))).Thumbprint, after);
        // And it still admits the nodes.
        using var nodeA = GrpcChannels.Create(_registryEndpoint, (ClusterTls.Load(Dir("node-a")), ClusterTls.ControllerIdentity));
        Assert.Equal(StatusCode.OK, await AnnounceAsync(nodeA, "node-a"));
    }

    private async Task<string> ServedThumbprintAsync()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", _registryEndpoint.Port);
        await using var ssl = new SslStream(tcp.GetStream());
        var node = ClusterTls.Load(Dir("node-a")).Own;
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "solar", RemoteCertificateValidationCallback = (_, _, _, _) => true,
            LocalCertificateSelectionCallback = (_, _, _, _, _) => node, ApplicationProtocols = [SslApplicationProtocol.Http2],
        });
        return new X509Certificate2(ssl.RemoteCertificate!).Thumbprint;
    }

    private static async Task<StatusCode> CallAsync(GrpcChannel channel)
    {
        try
        {
            await new Registry.RegistryClient(channel).HeartbeatAsync(Heartbeat("node-a"), deadline: DateTime.UtcNow.AddSeconds(10));
            return StatusCode.OK;
        }
        catch (RpcException e) { return e.StatusCode; }
    }

    /// <summary>Any service stands in for the agent API: what is tested is who gets through the door.</summary>
    private sealed class Probe : Registry.RegistryBase
    {
        public override Task<HeartbeatResponse> Heartbeat(AgentAnnouncement request, ServerCallContext context) => Task.FromResult(new HeartbeatResponse());
    }
}
