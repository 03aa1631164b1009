using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using SolarCsi.Core.Errors;

namespace SolarCsi.Node.Nbd;

/// <summary>
/// An NBD pre-shared key sealed to the node that will use it: ECDH between a one-off key and the public key of that
/// node's control-plane certificate, HKDF-SHA256, AES-256-GCM bound to the volume and node. publish_context then
/// carries only the sealed form — Kubernetes keeps it in the VolumeAttachment's status, readable cluster-wide —
/// and only the node holding the certificate's private key can open it.
/// </summary>
public static class SealedKey
{
    private const string Version = "v1";

    /// <summary>What a sealed key is bound to: it opens for this volume on this node only.</summary>
    private static string Binding(string volumeId, string nodeId) => volumeId + "/" + nodeId;

    public static string Seal(string key, X509Certificate2 recipient, string volumeId, string nodeId)
    {
        var binding = Binding(volumeId, nodeId);
        using var recipientKey = recipient.GetECDsaPublicKey() ?? throw CsiErrors.InvalidArgument("the node's certificate has no EC key to seal a key to");
        using var peer = ECDiffieHellman.Create(recipientKey.ExportParameters(false));
        using var ephemeral = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var secret = KeyOf(ephemeral, peer.PublicKey, binding);
        var nonce = RandomNumberGenerator.GetBytes(12);
        var plain = Encoding.ASCII.GetBytes(key);
        var cipher = new byte[plain.Length];
        var tag = new byte[16];
        using (var aes = new AesGcm(secret, tag.Length)) aes.Encrypt(nonce, plain, cipher, tag, Encoding.UTF8.GetBytes(binding));
        return string.Join('.', Version, B64(ephemeral.PublicKey.ExportSubjectPublicKeyInfo()), B64(nonce), B64([.. cipher, .. tag]));
    }

    /// <summary>The key, or INVALID_ARGUMENT when <paramref name="sealedKey"/> was not sealed for this volume and node.</summary>
    public static string Unseal(string sealedKey, X509Certificate2 own, string volumeId, string nodeId)
    {
        var binding = Binding(volumeId, nodeId);
        try
        {
            var parts = sealedKey.Split('.');
            if (parts is not [Version, var pub, var n, var ct]) throw new FormatException("not a sealed key");
            using var ownEcdsa = own.GetECDsaPrivateKey() ?? throw new FormatException("this node's certificate has no EC private key");
            using var mine = ECDiffieHellman.Create(ownEcdsa.ExportParameters(true));
            using var ephemeral = ECDiffieHellman.Create();
            ephemeral.ImportSubjectPublicKeyInfo(FromB64(pub), out _);
            var secret = KeyOf(mine, ephemeral.PublicKey, binding);
            var sealedBytes = FromB64(ct);
            if (sealedBytes.Length < 16) throw new FormatException("truncated");
            var plain = new byte[sealedBytes.Length - 16];
            using (var aes = new AesGcm(secret, 16)) aes.Decrypt(FromB64(n), sealedBytes.AsSpan(0, plain.Length), sealedBytes.AsSpan(plain.Length), plain, Encoding.UTF8.GetBytes(binding));
            return Encoding.ASCII.GetString(plain);
        }
        catch (Exception e) when (e is FormatException or CryptographicException or ArgumentException)
        {
            throw CsiErrors.InvalidArgument($"the NBD key in publish_context was not sealed for this node and volume ({e.Message}); ControllerPublish the volume to this node again");
        }
    }

    private static byte[] KeyOf(ECDiffieHellman mine, ECDiffieHellmanPublicKey theirs, string binding)
    {
        var shared = mine.DeriveRawSecretAgreement(theirs);
        return HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, 32, info: Encoding.UTF8.GetBytes("solar-csi nbd-psk " + binding));
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] FromB64(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s.PadRight(s.Length + (4 - s.Length % 4) % 4, '='));
    }
}
