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
        using var ca = X509Certificate2.CreateFromPemFile(Path.Combine(caDir, ClusterTls.CaFile), Path.Combine(caDir, CaKeyFile));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName(identity);
        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var notAfter = DateTimeOffset.UtcNow.Add(validity);
        if (notAfter > ca.NotAfter) notAfter = ca.NotAfter;
        using var cert = request.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), notAfter, RandomNumberGenerator.GetBytes(16));
        Directory.CreateDirectory(outDir);
        // Key first, certificate last: a reader that sees the new certificate finds its key already there.
        Write(Path.Combine(outDir, ClusterTls.KeyFile), key.ExportPkcs8PrivateKeyPem());
        Write(Path.Combine(outDir, ClusterTls.CaFile), File.ReadAllText(Path.Combine(caDir, ClusterTls.CaFile)));
        Write(Path.Combine(outDir, ClusterTls.CertFile), cert.ExportCertificatePem());
    }

    private static void Write(string path, string pem)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, pem + "\n");
        File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: true);
    }
}
