using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace SolarCsi.Core.Hosting.Tls;

/// <summary>
/// The cluster CA and the certificates it issues to the controller and to each node (`solar certs`): ECDSA P-256,
/// the identity in the common name, usable as TLS client and server. Files are written 0600, in the layout of a
/// Kubernetes TLS Secret so the same directory can become one.
/// </summary>
public static class CertificateAuthority
{
    public const string CaKeyFile = "ca.key";

    /// <summary>Creates ca.crt and ca.key in <paramref name="dir"/>; refuses to overwrite an existing CA.</summary>
    public static void Create(string dir, TimeSpan validity)
    {
        if (File.Exists(Path.Combine(dir, ClusterTls.CaFile))) throw new IOException($"{dir} already holds a CA ({ClusterTls.CaFile}); not overwriting it");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=solar-csi cluster CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.Add(validity));
        Directory.CreateDirectory(dir);
        Write(Path.Combine(dir, ClusterTls.CaFile), ca.ExportCertificatePem());
        Write(Path.Combine(dir, CaKeyFile), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>Issues <paramref name="identity"/>'s certificate into <paramref name="outDir"/> (ca.crt, tls.crt, tls.key).</summary>
    public static void Issue(string caDir, string identity, string outDir, TimeSpan validity)
    {
        using var ca = LoadCa(caDir);
        var (keyPem, csrPem) = CreateSigningRequest(identity);
        var certPem = Sign(ca, CertificateRequest.LoadSigningRequestPem(csrPem, HashAlgorithmName.SHA256), validity);
        WriteIdentity(outDir, keyPem, File.ReadAllText(Path.Combine(caDir, ClusterTls.CaFile)), certPem);
    }

    /// <summary>The CA's certificate with its key, as <see cref="Create"/> wrote them.</summary>
    public static X509Certificate2 LoadCa(string caDir) =>
        X509Certificate2.CreateFromPemFile(Path.Combine(caDir, ClusterTls.CaFile), Path.Combine(caDir, CaKeyFile));

    /// <summary>A new ECDSA P-256 key and a PKCS#10 request for <paramref name="identity"/>, both PEM; the key never leaves its caller.</summary>
    public static (string KeyPem, string RequestPem) CreateSigningRequest(string identity)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName(identity);
        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        return (key.ExportPkcs8PrivateKeyPem(), request.CreateSigningRequestPem());
    }

    /// <summary>
    /// Signs <paramref name="request"/>'s subject and key (whose proof of possession the caller checked) as a party of
    /// the cluster: nothing else of the request is copied, so a requester cannot ask for a CA or for other uses.
    /// </summary>
    public static string Sign(X509Certificate2 ca, CertificateRequest request, TimeSpan validity)
    {
        var issued = new CertificateRequest(request.SubjectName, request.PublicKey, HashAlgorithmName.SHA256);
        issued.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        issued.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        issued.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var notAfter = DateTimeOffset.UtcNow.Add(validity);
        if (notAfter > ca.NotAfter) notAfter = ca.NotAfter;
        using var cert = issued.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), notAfter, RandomNumberGenerator.GetBytes(16));
        return cert.ExportCertificatePem();
    }

    /// <summary>Writes a party's key, CA and certificate as <see cref="ClusterTls"/> reads them.</summary>
    public static void WriteIdentity(string outDir, string keyPem, string caPem, string certPem)
    {
        Directory.CreateDirectory(outDir);
        // Key first, certificate last: a reader that sees the new certificate finds its key already there.
        Write(Path.Combine(outDir, ClusterTls.KeyFile), keyPem);
        Write(Path.Combine(outDir, ClusterTls.CaFile), caPem);
        Write(Path.Combine(outDir, ClusterTls.CertFile), certPem);
    }

    // Created 0600 (a key is never readable by others, not even between its write and a chmod), fsynced, renamed.
    private static void Write(string path, string pem) =>
        Storage.AtomicFile.WriteAsync(path, System.Text.Encoding.ASCII.GetBytes(pem.EndsWith('\n') ? pem : pem + "\n"), CancellationToken.None)
            .GetAwaiter().GetResult();
}
