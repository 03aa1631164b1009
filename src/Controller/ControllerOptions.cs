using SolarCsi.Core.Hosting;

namespace SolarCsi.Controller;

public sealed record ControllerOptions(string DriverName, GrpcEndpoint CsiEndpoint, GrpcEndpoint RegistryEndpoint, TimeSpan AgentTimeout,
    System.Net.IPEndPoint? MetricsAddress = null, TimeSpan? FreezeLease = null, string? StateDir = null,
    SolarCsi.Core.Hosting.Tls.ClusterTls? Tls = null, CertificateAuthorityOptions? Issuer = null, string? TlsDir = null)
{
    public static readonly TimeSpan DefaultAgentTimeout = TimeSpan.FromSeconds(20);
    public static readonly TimeSpan DefaultFreezeLease = TimeSpan.FromMinutes(5);

    /// <summary>How long a node holds writers frozen for a snapshot before it thaws them by itself.</summary>
    public TimeSpan WriterFreezeLease => FreezeLease ?? DefaultFreezeLease;

    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["endpoint"] = "CSI endpoint (unix:///path/csi.sock or tcp://127.0.0.1:PORT)",
        ["registry-endpoint"] = "where node agents announce themselves (e.g. tcp://0.0.0.0:9870)",
        ["driver-name"] = $"CSI driver name (default {PluginIdentity.DefaultDriverName})",
        ["agent-timeout-seconds"] = "an agent not heard from for this long is unavailable (default 20)",
        ["metrics-address"] = "serve Prometheus /metrics and /healthz over HTTP here, e.g. 0.0.0.0:9808 (default: off)",
        ["freeze-lease-seconds"] = "a node thaws the writers it froze for a snapshot after this long if the controller has not (default 300); " +
                                   "a snapshot whose freeze ended before its cut fails",
        ["tls-dir"] = "ca.crt, tls.crt and tls.key (a TLS Secret; the certificate from `solar certs issue --controller`): mutual TLS on the " +
                      "registry and towards the agents. Required when the registry is TCP on a non-loopback address, unless --ca-dir is " +
                      "given (default then: STATE-DIR/tls, issued and renewed by the controller itself)",
        ["ca-dir"] = "the cluster CA (ca.crt, ca.key from `solar certs ca`): the controller issues node certificates (for a bootstrap token, " +
                     "then for the node's current certificate) and its own",
        ["bootstrap-token-file"] = "tokens, one per line, a node may present for its first certificate (with --ca-dir); re-read at every request",
        ["node-certificate-days"] = "how long a certificate the controller issues is valid (default 30); its owner renews it after two thirds",
        ["node-id"] = "accepted for symmetry with the node plugin; unused",
        ["state-dir"] = "where the controller keeps which volume each CSI name was given to (default: in memory only, which a restart loses)",
    };

    public static ControllerOptions Parse(CommandLine cl)
    {
        var csi = GrpcEndpoint.Parse(cl.Get("endpoint") ?? throw new FormatException("--endpoint is required"));
        var registry = GrpcEndpoint.Parse(cl.Get("registry-endpoint") ?? throw new FormatException("--registry-endpoint is required"));
        var stateDir = cl.Get("state-dir") is { } dir ? Path.GetFullPath(dir) : null;
        var issuer = cl.Get("ca-dir") is { } caDir
            ? new CertificateAuthorityOptions(Path.GetFullPath(caDir), cl.Get("bootstrap-token-file") is { } t ? Path.GetFullPath(t) : null,
                TimeSpan.FromDays(CertificateDays(cl.GetInt("node-certificate-days", 30))))
            : cl.Get("bootstrap-token-file") is not null ? throw new FormatException("--bootstrap-token-file needs --ca-dir (the CA that signs what a token buys)") : null;
        var tlsDir = cl.Get("tls-dir") ?? (issuer is null ? null : Path.Combine(stateDir ?? throw new FormatException("--ca-dir without --tls-dir needs --state-dir " +
            "(where the controller keeps the certificate it issues itself)"), "tls"));
        if (issuer is not null && cl.Get("tls-dir") is null) issuer = issuer with { SelfIssuedDir = tlsDir };
        NetworkExposure.RequireLocal(csi, "--endpoint");
        NetworkExposure.RequireAuthenticated(registry, "--registry-endpoint", tlsDir is not null);
        return new ControllerOptions(
            CsiDriverName.Require(cl.Get("driver-name", PluginIdentity.DefaultDriverName)),
            csi,
            registry,
            TimeSpan.FromSeconds(cl.GetInt("agent-timeout-seconds", (int)DefaultAgentTimeout.TotalSeconds)),
            cl.Get("metrics-address") is { } metrics ? SolarCsi.Core.Metrics.MetricsServer.ParseAddress(metrics) : null,
            TimeSpan.FromSeconds(FreezeLeaseSeconds(cl.GetInt("freeze-lease-seconds", (int)DefaultFreezeLease.TotalSeconds))),
            stateDir,
            // Certificates are read (and the controller's own issued) by Program, not while flags are parsed.
            Issuer: issuer,
            TlsDir: tlsDir);
    }

    private static int CertificateDays(int days) =>
        days is >= 1 and <= 3650 ? days : throw new FormatException($"--node-certificate-days must be between 1 and 3650, not {days}");

    // The node refuses leases over 10 minutes (FreezeLeases.MaxLease).
    private static int FreezeLeaseSeconds(int seconds) =>
        seconds is >= 1 and <= 600 ? seconds : throw new FormatException($"--freeze-lease-seconds must be between 1 and 600, not {seconds}");
}

/// <summary>The controller as the cluster's certificate issuer (--ca-dir).</summary>
/// <param name="SelfIssuedDir">where the controller keeps the certificate it issues itself (no --tls-dir given), renewed as it runs.</param>
public sealed record CertificateAuthorityOptions(string CaDir, string? TokenFile, TimeSpan Validity, string? SelfIssuedDir = null);

/// <summary>The controller's own certificate when it holds the CA: issued into its TLS directory, and again when two thirds through.</summary>
public static class ControllerCertificate
{
    /// <summary>
    /// The controller's certificates at start: its own issued first when it holds the CA and has none that is current,
    /// then loaded from its TLS directory. Throws what reading or issuing throws; Program refuses to start with it.
    /// </summary>
    public static ControllerOptions WithCertificates(ControllerOptions options)
    {
        if (options.Issuer is { SelfIssuedDir: { } own } issuer) EnsureCurrent(issuer, own);
        return options.TlsDir is null
            ? options
            : options with { Tls = SolarCsi.Core.Hosting.Tls.ClusterTls.LoadFor(options.TlsDir, SolarCsi.Core.Hosting.Tls.ClusterTls.ControllerIdentity) };
    }

    public static void EnsureCurrent(CertificateAuthorityOptions issuer, string tlsDir)
    {
        try
        {
            // Its own, from this CA (ca.crt there is the CA's copy), and not yet due.
            var current = SolarCsi.Core.Hosting.Tls.ClusterTls.LoadFor(tlsDir, SolarCsi.Core.Hosting.Tls.ClusterTls.ControllerIdentity);
            if (File.ReadAllText(Path.Combine(tlsDir, SolarCsi.Core.Hosting.Tls.ClusterTls.CaFile)).Trim() ==
                File.ReadAllText(Path.Combine(issuer.CaDir, SolarCsi.Core.Hosting.Tls.ClusterTls.CaFile)).Trim() &&
                !SolarCsi.Core.Hosting.Tls.ClusterTls.RenewalDue(current.Own, DateTimeOffset.UtcNow)) return;
        }
        catch (Exception e) when (e is FormatException or IOException or System.Security.Cryptography.CryptographicException)
        {
            // Missing, someone else's or unreadable: issue a new one.
        }
        SolarCsi.Core.Hosting.Tls.CertificateAuthority.Issue(issuer.CaDir, SolarCsi.Core.Hosting.Tls.ClusterTls.ControllerIdentity, tlsDir, issuer.Validity);
    }
}
