using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace SolarCsi.Core.Hosting.Tls;

/// <summary>
/// The control plane's mutual TLS: one cluster CA, and a certificate per party whose common name says who it is —
/// <see cref="ControllerIdentity"/>, or <see cref="NodeIdentity"/> of a node id. Read from a directory laid out as a
/// Kubernetes TLS Secret (<c>ca.crt</c>, <c>tls.crt</c>, <c>tls.key</c>), and read again whenever those files change,
/// so a rotated certificate is used from the next connection on without a restart. Peers are checked against the
/// CA alone (no host names: agents are dialled by pod IP) and then by identity, which each endpoint decides.
/// </summary>
public sealed class ClusterTls
{
    public const string ControllerIdentity = "solar-controller";
    private const string NodePrefix = "solar-node:";
    public const string CaFile = "ca.crt", CertFile = "tls.crt", KeyFile = "tls.key";

    private readonly string _dir;
    private readonly string _caFile;
    private readonly bool _trustOnly;
    private readonly object _lock = new();
    private (DateTime Ca, DateTime Cert, DateTime Key) _stamps;
    private X509Certificate2Collection _roots = [];
    private X509Certificate2? _own;

    private ClusterTls(string dir, string? caFile, bool trustOnly)
    {
        _dir = dir;
        _caFile = caFile ?? Path.Combine(dir, CaFile);
        _trustOnly = trustOnly;
        Reload();
    }

    /// <summary>
    /// The directory's credentials; a clear error naming what is missing or unreadable. <paramref name="caFile"/>, when
    /// given, is the trusted CA instead of the directory's ca.crt (a node whose certificate the controller issued
    /// trusts the CA bundle its install mounts, so a rotated bundle is trusted from the next connection on).
    /// </summary>
    public static ClusterTls Load(string dir, string? caFile = null)
    {
        foreach (var file in new[] { caFile ?? Path.Combine(dir, CaFile), Path.Combine(dir, CertFile), Path.Combine(dir, KeyFile) })
            if (!File.Exists(file)) throw new FormatException($"--tls-dir {dir} has no {Path.GetFileName(file)} (a TLS Secret's ca.crt, tls.crt, tls.key)");
        return new ClusterTls(dir, caFile, trustOnly: false);
    }

    /// <summary>
    /// Trust without a certificate of one's own: a node asking the controller for its first certificate checks the
    /// controller against <paramref name="caFile"/> and proves itself with its bootstrap token instead.
    /// </summary>
    public static ClusterTls TrustOnly(string caFile) =>
        File.Exists(caFile) ? new ClusterTls(Path.GetDirectoryName(caFile)!, caFile, trustOnly: true) : throw new FormatException($"CA file {caFile} does not exist");

    /// <summary>
    /// The directory's credentials for <paramref name="identity"/>: a plugin started with someone else's certificate (or
    /// one its CA did not sign) would be refused by every peer, so it says so at start, naming the flag.
    /// </summary>
    public static ClusterTls LoadFor(string dir, string identity, string? caFile = null)
    {
        var tls = Load(dir, caFile);
        var own = tls.IdentityOf(tls.Own);
        return own == identity ? tls : throw new FormatException($"--tls-dir {dir}: its certificate is {own ?? "not signed by its ca.crt"}, not {identity}'s");
    }

    /// <summary>
    /// The identity a certificate names, without checking its chain: for a peer the TLS handshake has already checked
    /// (<see cref="ServerOptions"/>), so a per-call look at it costs no second chain build.
    /// </summary>
    public static string? NameOf(X509Certificate peer)
    {
        using var cert = new X509Certificate2(peer);
        return cert.GetNameInfo(X509NameType.SimpleName, forIssuer: false) is { Length: > 0 } name ? name : null;
    }

    public static string NodeIdentity(string nodeId) => NodePrefix + nodeId;

    /// <summary>The node id a node identity names; null for any other identity.</summary>
    public static string? NodeIdOf(string? identity) =>
        identity is not null && identity.StartsWith(NodePrefix, StringComparison.Ordinal) ? identity[NodePrefix.Length..] : null;

    /// <summary>This party's certificate (with its key), as the files say now.</summary>
    public X509Certificate2 Own
    {
        get
        {
            Reload();
            lock (_lock) return _own ?? throw new InvalidOperationException("a trust-only TLS configuration has no certificate of its own");
        }
    }

    /// <summary>
    /// Whether a certificate is two thirds through its life (or past it): the point from which its owner asks for the
    /// next one, leaving a third of the validity to get it through a controller that is down or being upgraded.
    /// </summary>
    public static bool RenewalDue(X509Certificate2 cert, DateTimeOffset now) =>
        now >= cert.NotBefore.ToUniversalTime() + (cert.NotAfter.ToUniversalTime() - cert.NotBefore.ToUniversalTime()) * 2 / 3;

    /// <summary>The identity <paramref name="peer"/> proves: its common name, if it chains to the cluster CA and is valid now; else null.</summary>
    public string? IdentityOf(X509Certificate? peer)
    {
        if (peer is null) return null;
        Reload();
        using var cert = new X509Certificate2(peer);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        lock (_lock) chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
        return chain.Build(cert) ? NameOf(cert) : null;
    }

    /// <summary>
    /// Kestrel's side: this party's certificate, a client certificate required, and only <paramref name="allow"/>ed
    /// identities admitted. With <paramref name="certificateOptional"/> a client may come without one (to ask for its
    /// first certificate); each call then checks who its caller proved to be, and a certificate offered is still checked here.
    /// </summary>
    public Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions ServerOptions(Func<string, bool> allow, bool certificateOptional = false) => new()
    {
        ServerCertificateSelector = (_, _) => Own,
        ClientCertificateMode = certificateOptional
            ? Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.AllowCertificate
            : Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.RequireCertificate,
        ClientCertificateValidation = (cert, _, _) => IdentityOf(cert) is { } id && allow(id),
        SslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
    };

    /// <summary>The client's side: this party's certificate, and the server admitted only if it proves <paramref name="expected"/>.</summary>
    public SslClientAuthenticationOptions ClientOptions(string expected) => new()
    {
        LocalCertificateSelectionCallback = (_, _, _, _, _) => _trustOnly ? null! : Own,
        RemoteCertificateValidationCallback = (_, cert, _, _) => IdentityOf(cert) == expected,
        EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
    };

    private void Reload()
    {
        var stamps = (File.GetLastWriteTimeUtc(_caFile), Stamp(CertFile), Stamp(KeyFile));
        lock (_lock)
        {
            if ((_own is not null || _trustOnly && _roots.Count > 0) && stamps == _stamps) return;
            try
            {
                var roots = new X509Certificate2Collection();
                roots.ImportFromPemFile(_caFile);
                if (_trustOnly)
                {
                    (_roots, _stamps) = (roots, stamps);
                    return;
                }
                using var pem = X509Certificate2.CreateFromPemFile(Path.Combine(_dir, CertFile), Path.Combine(_dir, KeyFile));
                // A key held only in memory cannot be used by the TLS stack on every platform; an exported copy can.
                var own = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
                (_roots, _own, _stamps) = (roots, own, stamps);
            }
            catch (Exception e) when ((_own is not null || _trustOnly && _roots.Count > 0) && e is System.Security.Cryptography.CryptographicException or IOException)
            {
                // Caught between writing the new certificate and its key: keep serving with the old pair, look again next time.
            }
        }
    }

    private DateTime Stamp(string file) => File.GetLastWriteTimeUtc(Path.Combine(_dir, file));
}
