using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Hosting.Tls;

namespace SolarCsi.Node.Agent;

/// <summary>
/// This node's control-plane certificate, from the controller: the first one for the install's bootstrap token
/// (over TLS that checks the controller against the CA the install mounts, so the token goes to no impostor), later
/// ones for the current certificate once it is two thirds through its life. The new key is made here and never leaves
/// the node; the files are written key first, certificate last (ClusterTls re-reads them, so a renewal needs no restart).
/// </summary>
public sealed class NodeCertificates(NodeOptions options, ILogger<NodeCertificates> logger) : BackgroundService
{
    private static readonly TimeSpan CheckEvery = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The node's certificates at start, however they come: placed by the operator in --tls-dir (read), or kept there
    /// from the controller (<see cref="EnsureAsync"/>); null without --tls-dir (unix sockets and loopback only).
    /// </summary>
    public static async Task<ClusterTls?> LoadOrObtainAsync(NodeOptions options, ILogger logger, TimeSpan patience, CancellationToken ct) =>
        options.Certificates switch
        {
            null => null,
            { TokenFile: null } placed => ClusterTls.LoadFor(placed.TlsDir, ClusterTls.NodeIdentity(options.NodeId), placed.CaFile),
            _ => await EnsureAsync(options, logger, patience, ct),
        };

    /// <summary>
    /// The node's certificates at start: those in --tls-dir when they are its own and not due, else new ones from the
    /// controller, asked for until it answers or <paramref name="patience"/> runs out (a controller still starting).
    /// </summary>
    public static async Task<ClusterTls> EnsureAsync(NodeOptions options, ILogger logger, TimeSpan patience, CancellationToken ct)
    {
        var source = options.Certificates ?? throw new InvalidOperationException("no --tls-dir");
        var identity = ClusterTls.NodeIdentity(options.NodeId);
        var current = TryLoad(source, identity);
        if (current is not null && !ClusterTls.RenewalDue(current.Own, DateTimeOffset.UtcNow)) return current;
        var deadline = DateTime.UtcNow + patience;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await RequestAsync(options, current, ct);
                return ClusterTls.LoadFor(source.TlsDir, identity, source.CaFile);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded && DateTime.UtcNow < deadline)
            {
                if (attempt == 1) logger.LogInformation("the controller at {Endpoint} is not answering yet ({Detail}); asking again", options.ControllerEndpoint, e.Status.Detail);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(5, attempt * 0.5)), ct);
            }
            catch (RpcException e) when (current is not null)
            {
                // A renewal refused or not reachable: the current certificate is still valid, so serve with it and try again later.
                logger.LogWarning("could not renew this node's certificate ({Code}: {Detail}); it is valid until {NotAfter:u}", e.StatusCode, e.Status.Detail,
                    current.Own.NotAfter.ToUniversalTime());
                return current;
            }
            catch (RpcException e)
            {
                throw new InvalidOperationException($"the controller at {options.ControllerEndpoint} gave this node no certificate: {e.StatusCode}: {e.Status.Detail}");
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try { await Task.Delay(CheckEvery, stoppingToken); }
            catch (OperationCanceledException) { return; }
            if (options.Tls is not { } tls || !ClusterTls.RenewalDue(tls.Own, DateTimeOffset.UtcNow)) continue;
            try
            {
                await RequestAsync(options, tls, stoppingToken);
                logger.LogInformation("renewed this node's certificate; valid until {NotAfter:u}", tls.Own.NotAfter.ToUniversalTime());
            }
            catch (Exception e) when (e is RpcException or IOException)
            {
                logger.LogWarning("could not renew this node's certificate ({Reason}); it is valid until {NotAfter:u}, trying again in {Every}",
                    e.Message, tls.Own.NotAfter.ToUniversalTime(), CheckEvery);
            }
        }
    }

    /// <param name="current">the node's valid certificate, which it renews with; null to present the bootstrap token.</param>
    private static async Task RequestAsync(NodeOptions options, ClusterTls? current, CancellationToken ct)
    {
        var source = options.Certificates!;
        var endpoint = options.ControllerEndpoint ?? throw new InvalidOperationException("no --controller-endpoint to ask for a certificate");
        var identity = ClusterTls.NodeIdentity(options.NodeId);
        var (keyPem, csrPem) = CertificateAuthority.CreateSigningRequest(identity);
        var request = new CertificateSigningRequest { NodeId = options.NodeId, CsrPem = csrPem };
        if (current is null)
            request.BootstrapToken = source.TokenFile is { } file && File.Exists(file) ? (await File.ReadAllTextAsync(file, ct)).Trim()
                : throw new InvalidOperationException($"--tls-dir {source.TlsDir} holds no valid certificate of {identity}, and there is no bootstrap token to ask for one");
        var trust = current ?? ClusterTls.TrustOnly(source.CaFile ?? Path.Combine(source.TlsDir, ClusterTls.CaFile));
        using var channel = GrpcChannels.Create(endpoint, (trust, ClusterTls.ControllerIdentity));
        var issued = await new Registry.RegistryClient(channel).IssueCertificateAsync(request, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
        CertificateAuthority.WriteIdentity(source.TlsDir, keyPem, issued.CaPem, issued.CertificatePem);
    }

    private static ClusterTls? TryLoad(NodeCertificateSource source, string identity)
    {
        try { return ClusterTls.LoadFor(source.TlsDir, identity, source.CaFile); }
        catch (Exception e) when (e is FormatException or IOException or System.Security.Cryptography.CryptographicException) { return null; }
    }
}
