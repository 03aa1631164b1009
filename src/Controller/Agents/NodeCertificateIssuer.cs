using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Storage;

namespace SolarCsi.Controller.Agents;

/// <summary>
/// Node certificates signed by the cluster CA the controller holds (--ca-dir), so an operator never issues one per
/// node. A node gets its first certificate for the install's bootstrap token and every later one for the certificate
/// it holds (renewal, mutual TLS). A bootstrap token speaks for no node in particular, so it is worth one node id's
/// first certificate only: while a node id holds an unexpired certificate from this controller, a token buys another
/// only for the same key (a retried bootstrap), never for a stranger's key — the stranger with a stolen token cannot
/// become a node that already joined. What was issued is kept under --state-dir (issued/NODE, key hash and expiry).
/// </summary>
public sealed class NodeCertificateIssuer(string caDir, string? tokenFile, TimeSpan validity, string? stateDir, TimeProvider clock,
    ILogger<NodeCertificateIssuer> logger)
{
    private const int MaxRequestBytes = 8 * 1024;
    private const string P256 = "1.2.840.10045.3.1.7";
    private readonly SolarCsi.Core.Concurrency.KeyedLock _nodes = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (string KeyHash, DateTimeOffset NotAfter)> _inMemory = new(StringComparer.Ordinal);

    public TimeSpan Validity => validity;

    /// <param name="caller">the identity the caller's certificate proved (mutual TLS), or null when it presented none.</param>
    public async Task<IssuedCertificate> IssueAsync(CertificateSigningRequest request, string? caller, CancellationToken ct)
    {
        if (!StorageId.IsValidNode(request.NodeId)) throw CsiErrors.InvalidArgument($"node id '{request.NodeId}' is not valid");
        var identity = ClusterTls.NodeIdentity(request.NodeId);
        var csr = ParseRequest(request.CsrPem, identity);
        var keyHash = Convert.ToHexString(SHA256.HashData(csr.PublicKey.ExportSubjectPublicKeyInfo()));
        string how;
        if (caller == identity) how = "renewal";
        else if (caller is not null)
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"a certificate of {caller} cannot ask for {identity}'s"));
        else
        {
            RequireToken(request.BootstrapToken);
            how = "bootstrap token";
        }

        using var held = await _nodes.AcquireAsync(request.NodeId, ct);
        if (how != "renewal" && Issued(request.NodeId) is { } earlier && earlier.NotAfter > clock.GetUtcNow() && earlier.KeyHash != keyHash)
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"node {request.NodeId} already holds a certificate from this controller (until {earlier.NotAfter:u}) for another key; it renews " +
                $"with that certificate. To admit a reinstalled node before then, remove {RecordOf(request.NodeId) ?? "its record"} on the controller"));

        using var ca = CertificateAuthority.LoadCa(caDir);
        var pem = CertificateAuthority.Sign(ca, csr, validity);
        using var issued = X509Certificate2.CreateFromPem(pem);
        await RecordAsync(request.NodeId, keyHash, issued.NotAfter.ToUniversalTime(), ct);
        logger.LogInformation("issued {Identity} a certificate (serial {Serial}, until {NotAfter:u}) for its {How}", identity, issued.SerialNumber,
            issued.NotAfter.ToUniversalTime(), how);
        return new IssuedCertificate { CertificatePem = pem, CaPem = ca.ExportCertificatePem() };
    }

    private static CertificateRequest ParseRequest(string pem, string identity)
    {
        if (string.IsNullOrEmpty(pem) || pem.Length > MaxRequestBytes)
            throw CsiErrors.InvalidArgument($"csr_pem must be a PKCS#10 request of at most {MaxRequestBytes} bytes");
        CertificateRequest csr;
        try { csr = CertificateRequest.LoadSigningRequestPem(pem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default); }
        catch (CryptographicException) { throw CsiErrors.InvalidArgument("csr_pem is not a PKCS#10 request signed by its own key"); }
        if (csr.SubjectName.Name != "CN=" + identity)
            throw CsiErrors.InvalidArgument($"the request's subject must be CN={identity}, not '{csr.SubjectName.Name}'");
        using var key = csr.PublicKey.GetECDsaPublicKey();
        if (key?.ExportParameters(false).Curve.Oid.Value != P256) throw CsiErrors.InvalidArgument("the request's key must be ECDSA P-256");
        return csr;
    }

    private void RequireToken(string presented)
    {
        var tokens = tokenFile is not null && File.Exists(tokenFile)
            ? File.ReadAllLines(tokenFile).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray()
            : [];
        if (tokens.Length == 0)
            throw new RpcException(new Status(StatusCode.PermissionDenied, "this controller admits new nodes by no bootstrap token (--bootstrap-token-file)"));
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(presented ?? ""));
        // Every token is compared in full, so the time taken says nothing about which one came close.
        var match = false;
        foreach (var token in tokens) match |= CryptographicOperations.FixedTimeEquals(given, SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        if (!match) throw new RpcException(new Status(StatusCode.Unauthenticated, "bootstrap token refused"));
    }

    private string? RecordOf(string nodeId) => stateDir is null ? null : Path.Combine(stateDir, "issued", nodeId);

    private (string KeyHash, DateTimeOffset NotAfter)? Issued(string nodeId)
    {
        if (RecordOf(nodeId) is not { } file) return _inMemory.TryGetValue(nodeId, out var kept) ? kept : null;
        if (!File.Exists(file)) return null;
        var parts = File.ReadAllText(file).Split(' ', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return parts.Length == 2 && DateTimeOffset.TryParse(parts[1], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var notAfter)
            ? (parts[0], notAfter)
            // An unreadable record admits nobody by token: the node renews with its certificate, an operator removes the file.
            : (string.Empty, DateTimeOffset.MaxValue);
    }

    private async Task RecordAsync(string nodeId, string keyHash, DateTime notAfter, CancellationToken ct)
    {
        if (RecordOf(nodeId) is not { } file)
        {
            _inMemory[nodeId] = (keyHash, notAfter);
            return;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        await AtomicFile.WriteAsync(file, Encoding.ASCII.GetBytes($"{keyHash} {notAfter.ToString("O", CultureInfo.InvariantCulture)}\n"), ct);
    }
}
