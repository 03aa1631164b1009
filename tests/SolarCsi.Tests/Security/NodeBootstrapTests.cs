using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Agent.V1;
using SolarCsi.Controller;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Local;
using SolarCsi.Node;
using SolarCsi.Node.Agent;

namespace SolarCsi.Tests.Security;

/// <summary>
/// Node certificates from the controller (--ca-dir): the real registry as the controller builds it, on 127.0.0.1 over
/// TLS, and the node's own bootstrap code. A token buys one node id's first certificate; a certificate buys its own
/// renewal only; strangers get nothing and change nothing.
/// </summary>
public sealed class NodeBootstrapTests : IAsyncLifetime
{
    private const string Token = "0123456789abcdef0123456789abcdef";
    private readonly TempDir _dir = new();
    private string Dir(string name) => Path.Combine(_dir.Path, name);
    private ControllerPlane _plane = null!;
    private WebApplication _registry = null!;
    private GrpcEndpoint _endpoint = null!;
    private string CaFile => Path.Combine(Dir("ca"), ClusterTls.CaFile);

    public async Task InitializeAsync()
    {
        CertificateAuthority.Create(Dir("ca"), TimeSpan.FromDays(10));
        CertificateAuthority.Create(Dir("other-ca"), TimeSpan.FromDays(10));
        CertificateAuthority.Issue(Dir("other-ca"), ClusterTls.NodeIdentity("node-a"), Dir("impostor-a"), TimeSpan.FromDays(1));
        await File.WriteAllTextAsync(Dir("token"), "old-token-no-longer-used-but-listed\n" + Token + "\n");
        Directory.CreateDirectory(Dir("state"));
        var issuer = new CertificateAuthorityOptions(Dir("ca"), Dir("token"), TimeSpan.FromDays(3));
        ControllerCertificate.EnsureCurrent(issuer, Dir("controller"));
        _endpoint = GrpcEndpoint.Parse($"tcp://127.0.0.1:{LocalCluster.FreePort()}");
        _plane = new ControllerPlane(new ControllerOptions("x.csi.dev", GrpcEndpoint.Parse($"unix://{Dir("csi.sock")}"), _endpoint, TimeSpan.FromSeconds(20),
            StateDir: Dir("state"), Tls: ClusterTls.LoadFor(Dir("controller"), ClusterTls.ControllerIdentity), Issuer: issuer));
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

    private NodeOptions Node(string node, string? token = Token)
    {
        if (token is not null) File.WriteAllText(Dir(node + ".token"), token + "\n");
        var args = new List<string>
        {
            "--endpoint", $"unix://{Dir(node + "-csi.sock")}", "--node-id", node, "--state-dir", Dir(node + "-state"),
            "--controller-endpoint", _endpoint.ToString(), "--tls-dir", Dir(node + "-tls"), "--ca-file", CaFile,
        };
        if (token is not null) args.AddRange(["--bootstrap-token-file", Dir(node + ".token")]);
        return NodeOptions.Parse(new CommandLine([.. args], NodeOptions.Flags));
    }

    private static Task<ClusterTls> BootstrapAsync(NodeOptions options) =>
        NodeCertificates.EnsureAsync(options, NullLogger.Instance, TimeSpan.FromSeconds(5), CancellationToken.None);

    private GrpcChannel Channel(X509Certificate2? certificate) => Stranger.Channel(_endpoint.Port, certificate);

    private static Task<StatusCode> CodeOf(Func<Task> call) => Stranger.CodeOf(call);

    private static CertificateSigningRequest Request(string node, string? csrIdentity = null, string token = Token) =>
        new() { NodeId = node, CsrPem = CertificateAuthority.CreateSigningRequest(csrIdentity ?? ClusterTls.NodeIdentity(node)).RequestPem, BootstrapToken = token };

    [Fact]
    public async Task ANodeWithTheTokenGetsItsOwnCertificateAndAnnouncesWithIt()
    {
        var tls = await BootstrapAsync(Node("node-a"));
        Assert.Equal(ClusterTls.NodeIdentity("node-a"), tls.IdentityOf(tls.Own));
        Assert.False(tls.Own.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        Assert.InRange(tls.Own.NotAfter.ToUniversalTime(), DateTime.UtcNow.AddDays(2.9), DateTime.UtcNow.AddDays(3.1));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(Dir("node-a-tls"), ClusterTls.KeyFile)));

        using var channel = GrpcChannels.Create(_endpoint, (tls, ClusterTls.ControllerIdentity));
        await new Registry.RegistryClient(channel).HeartbeatAsync(new AgentAnnouncement { NodeId = "node-a", Endpoint = "tcp://127.0.0.1:9" });
        Assert.True(_plane.Directory.IsKnown("node-a"));
        Assert.Equal(["127.0.0.1"], _plane.Directory.Find("node-a")!.Addresses());

        // A restart with a valid certificate asks for nothing: the same certificate, no second issuance.
        var again = await BootstrapAsync(Node("node-a", token: "not-the-token"));
        Assert.Equal(tls.Own.Thumbprint, again.Own.Thumbprint);
    }

    [Fact]
    public async Task StrangersWithoutTheTokenOrWithAForeignCertificateGetNothing()
    {
        using (var noCertificate = Channel(null))
        {
            var registry = new Registry.RegistryClient(noCertificate);
            Assert.Equal(StatusCode.Unauthenticated, await CodeOf(async () => await registry.IssueCertificateAsync(Request("node-a", token: "guess"))));
            Assert.Equal(StatusCode.Unauthenticated, await CodeOf(async () => await registry.IssueCertificateAsync(Request("node-a", token: ""))));
            // Without a certificate a TLS client gets through the handshake (to ask for one) and no further.
            Assert.Equal(StatusCode.Unauthenticated, await CodeOf(async () =>
                await registry.HeartbeatAsync(new AgentAnnouncement { NodeId = "node-a", Endpoint = "tcp://127.0.0.1:9" })));
            // The token does not make a request for another identity, or a malformed one, acceptable.
            Assert.Equal(StatusCode.InvalidArgument, await CodeOf(async () => await registry.IssueCertificateAsync(Request("node-a", ClusterTls.ControllerIdentity))));
            Assert.Equal(StatusCode.InvalidArgument, await CodeOf(async () => await registry.IssueCertificateAsync(Request("node-a", ClusterTls.NodeIdentity("node-b")))));
            Assert.Equal(StatusCode.InvalidArgument, await CodeOf(async () => await registry.IssueCertificateAsync(
                new CertificateSigningRequest { NodeId = "node-a", CsrPem = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----", BootstrapToken = Token })));
            Assert.Equal(StatusCode.InvalidArgument, await CodeOf(async () => await registry.IssueCertificateAsync(Request("../etc"))));
            using var rsa = RSA.Create(2048);
            var rsaRequest = new CertificateRequest("CN=" + ClusterTls.NodeIdentity("node-a"), rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            Assert.Equal(StatusCode.InvalidArgument, await CodeOf(async () => await registry.IssueCertificateAsync(
                new CertificateSigningRequest { NodeId = "node-a", CsrPem = rsaRequest.CreateSigningRequestPem(), BootstrapToken = Token })));
        }
        // A certificate from another CA does not get through the handshake at all.
        using (var impostor = Channel(ClusterTls.Load(Dir("impostor-a")).Own))
            Assert.NotEqual(StatusCode.OK, await CodeOf(async () => await new Registry.RegistryClient(impostor).IssueCertificateAsync(Request("node-a"))));
        using (var plaintext = GrpcChannels.Create(_endpoint))
            Assert.NotEqual(StatusCode.OK, await CodeOf(async () => await new Registry.RegistryClient(plaintext).IssueCertificateAsync(Request("node-a"))));

        Assert.False(Directory.Exists(Path.Combine(Dir("state"), "issued")));
        Assert.False(_plane.Directory.IsKnown("node-a"));
    }

    [Fact]
    public async Task ATokenCannotTakeOverANodeThatAlreadyJoined()
    {
        var nodeA = await BootstrapAsync(Node("node-a"));
        using var stranger = Channel(null);
        Assert.Equal(StatusCode.PermissionDenied, await CodeOf(async () => await new Registry.RegistryClient(stranger).IssueCertificateAsync(Request("node-a"))));
        // Node-b's certificate cannot ask for node-a's either, with or without the token.
        var nodeB = await BootstrapAsync(Node("node-b"));
        using var asNodeB = GrpcChannels.Create(_endpoint, (nodeB, ClusterTls.ControllerIdentity));
        Assert.Equal(StatusCode.PermissionDenied, await CodeOf(async () => await new Registry.RegistryClient(asNodeB).IssueCertificateAsync(Request("node-a"))));

        // Node-a itself renews with its certificate (no token), for a new key.
        using var asNodeA = GrpcChannels.Create(_endpoint, (nodeA, ClusterTls.ControllerIdentity));
        var renewed = await new Registry.RegistryClient(asNodeA).IssueCertificateAsync(Request("node-a", token: ""));
        using var cert = X509Certificate2.CreateFromPem(renewed.CertificatePem);
        Assert.Equal(ClusterTls.NodeIdentity("node-a"), cert.GetNameInfo(X509NameType.SimpleName, false));
        Assert.NotEqual(nodeA.Own.GetPublicKeyString(), cert.GetPublicKeyString());
        // And after the renewal the token still buys no other key for node-a: the record follows the renewal.
        Assert.Equal(StatusCode.PermissionDenied, await CodeOf(async () => await new Registry.RegistryClient(stranger).IssueCertificateAsync(Request("node-a"))));
    }

    [Fact]
    public async Task ANodeWithoutTokenOrCertificateDoesNotStartAndSaysWhy()
    {
        File.WriteAllText(Dir("empty.token"), "");
        var options = NodeOptions.Parse(new CommandLine(["--endpoint", $"unix://{Dir("c.sock")}", "--node-id", "node-c", "--state-dir", Dir("c-state"),
            "--controller-endpoint", _endpoint.ToString(), "--tls-dir", Dir("c-tls"), "--ca-file", CaFile, "--bootstrap-token-file", Dir("empty.token")], NodeOptions.Flags));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => BootstrapAsync(options));
        Assert.Contains("Unauthenticated", e.Message);
        Assert.False(File.Exists(Path.Combine(Dir("c-tls"), ClusterTls.CertFile)));

        // A node trusting another CA never sends its token to this controller.
        var wrongTrust = NodeOptions.Parse(new CommandLine(["--endpoint", $"unix://{Dir("d.sock")}", "--node-id", "node-d", "--state-dir", Dir("d-state"),
            "--controller-endpoint", _endpoint.ToString(), "--tls-dir", Dir("d-tls"), "--ca-file", Path.Combine(Dir("other-ca"), ClusterTls.CaFile),
            "--bootstrap-token-file", Dir("node-a.token")], NodeOptions.Flags));
        File.WriteAllText(Dir("node-a.token"), Token);
        await Assert.ThrowsAnyAsync<Exception>(() => BootstrapAsync(wrongTrust));
        Assert.False(Directory.Exists(Path.Combine(Dir("state"), "issued")));
    }

    [Fact]
    public async Task ACertificateDueForRenewalIsRenewedWithItselfWithoutTheToken()
    {
        await BootstrapAsync(Node("node-a"));
        // A certificate of one minute (from five minutes ago) is past two thirds of its life already.
        CertificateAuthority.Issue(Dir("ca"), ClusterTls.NodeIdentity("node-a"), Dir("node-a-tls"), TimeSpan.FromMinutes(1));
        var due = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(Dir("node-a-tls"), ClusterTls.CertFile)));
        Assert.True(ClusterTls.RenewalDue(due, DateTimeOffset.UtcNow));

        var renewed = await BootstrapAsync(Node("node-a", token: "the-token-was-rotated-away"));
        Assert.NotEqual(due.Thumbprint, renewed.Own.Thumbprint);
        Assert.False(ClusterTls.RenewalDue(renewed.Own, DateTimeOffset.UtcNow));
        Assert.InRange(renewed.Own.NotAfter.ToUniversalTime(), DateTime.UtcNow.AddDays(2.9), DateTime.UtcNow.AddDays(3.1));

        // The controller's own certificate likewise, from its CA.
        CertificateAuthority.Issue(Dir("ca"), ClusterTls.ControllerIdentity, Dir("controller"), TimeSpan.FromMinutes(1));
        var before = File.ReadAllText(Path.Combine(Dir("controller"), ClusterTls.CertFile));
        ControllerCertificate.EnsureCurrent(new CertificateAuthorityOptions(Dir("ca"), null, TimeSpan.FromDays(3)), Dir("controller"));
        Assert.NotEqual(before, File.ReadAllText(Path.Combine(Dir("controller"), ClusterTls.CertFile)));
        Assert.False(ClusterTls.RenewalDue(ClusterTls.LoadFor(Dir("controller"), ClusterTls.ControllerIdentity).Own, DateTimeOffset.UtcNow));
    }

    [Fact]
    public void RenewalIsDueTwoThirdsThroughACertificatesLife()
    {
        var tls = ClusterTls.LoadFor(Dir("controller"), ClusterTls.ControllerIdentity);
        var from = tls.Own.NotBefore.ToUniversalTime();
        var life = tls.Own.NotAfter.ToUniversalTime() - from;
        Assert.False(ClusterTls.RenewalDue(tls.Own, from + life * 0.6));
        Assert.True(ClusterTls.RenewalDue(tls.Own, from + life * 0.7));
    }
}

/// <summary>Nothing faces the network without certificates; the CSI endpoint never faces it.</summary>
public sealed class NetworkExposureTests
{
    private static NodeOptions Node(params string[] extra) => NodeOptions.Parse(new CommandLine(
        ["--endpoint", "unix:///run/solar/csi.sock", "--state-dir", "/var/lib/solar-x", "--node-id", "n1", .. extra], NodeOptions.Flags));

    private static ControllerOptions Controller(params string[] extra) => ControllerOptions.Parse(new CommandLine(
        ["--endpoint", "unix:///run/solar/controller.sock", .. extra], ControllerOptions.Flags));

    [Theory]
    [InlineData("--agent-endpoint", "tcp://0.0.0.0:9871")]
    [InlineData("--agent-endpoint", "tcp://10.1.2.3:9871")]
    [InlineData("--agent-endpoint", "tcp://[::]:9871")]
    [InlineData("--controller-endpoint", "tcp://10.96.0.10:9870")]
    public void ANodeRefusesANetworkFacingControlPlaneWithoutCertificates(string flag, string endpoint)
    {
        var e = Assert.Throws<FormatException>(() => Node(flag, endpoint));
        Assert.Contains("--tls-dir", e.Message);
        Assert.Contains(flag, e.Message);
    }

    [Fact]
    public void LoopbackAndUnixSocketsStayOpenToTheSingleMachineMode()
    {
        Assert.False(Node("--agent-endpoint", "tcp://127.0.0.1:9871", "--controller-endpoint", "tcp://127.0.0.1:9870").AgentEndpoint.IsUnix);
        Assert.False(Node("--agent-endpoint", "tcp://[::1]:9871").AgentEndpoint.IsUnix);
        Assert.True(Node("--controller-endpoint", "unix:///run/solar/registry.sock").AgentEndpoint.IsUnix);
        Assert.NotNull(Controller("--registry-endpoint", "tcp://127.0.0.1:9870"));
    }

    [Fact]
    public void TheCsiEndpointNeverFacesTheNetwork()
    {
        Assert.Contains("CSI", Assert.Throws<FormatException>(() => NodeOptions.Parse(new CommandLine(
            ["--endpoint", "tcp://0.0.0.0:10000", "--state-dir", "/var/lib/solar-x", "--node-id", "n1"], NodeOptions.Flags))).Message);
        Assert.Contains("CSI", Assert.Throws<FormatException>(() => ControllerOptions.Parse(new CommandLine(
            ["--endpoint", "tcp://192.168.1.1:10000", "--registry-endpoint", "unix:///run/r.sock"], ControllerOptions.Flags))).Message);
    }

    [Fact]
    public void AControllerRefusesANetworkFacingRegistryWithoutCertificatesOrItsCa()
    {
        Assert.Contains("--tls-dir", Assert.Throws<FormatException>(() => Controller("--registry-endpoint", "tcp://0.0.0.0:9870")).Message);
        Assert.Contains("--ca-dir", Assert.Throws<FormatException>(() => Controller("--registry-endpoint", "unix:///run/r.sock", "--bootstrap-token-file", "/t")).Message);
        using var dir = new TempDir();
        SolarCsi.Core.Hosting.Tls.CertificateAuthority.Create(Path.Combine(dir.Path, "ca"), TimeSpan.FromDays(1));
        // With the CA the controller issues its own certificate into its state directory and serves the registry with it
        // (at start, not while its flags are parsed).
        var parsed = Controller("--registry-endpoint", "tcp://0.0.0.0:9870", "--ca-dir", Path.Combine(dir.Path, "ca"), "--state-dir", Path.Combine(dir.Path, "state"));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "state")));
        var options = ControllerCertificate.WithCertificates(parsed);
        Assert.Equal(ClusterTls.ControllerIdentity, options.Tls!.IdentityOf(options.Tls.Own));
        Assert.True(File.Exists(Path.Combine(dir.Path, "state", "tls", ClusterTls.CertFile)));
    }

    [Fact]
    public void ABootstrapTokenNeedsWhereToKeepTheCertificateAndWhomToTrust()
    {
        Assert.Contains("--ca-file", Assert.Throws<FormatException>(() => Node("--bootstrap-token-file", "/t", "--tls-dir", "/x")).Message);
        Assert.Contains("--tls-dir", Assert.Throws<FormatException>(() => Node("--bootstrap-token-file", "/t", "--ca-file", "/ca.crt")).Message);
    }
}
