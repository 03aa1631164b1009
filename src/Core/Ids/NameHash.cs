using System.Security.Cryptography;
using System.Text;

namespace SolarCsi.Core.Ids;

/// <summary>
/// CSI names are arbitrary Unicode; on disk and in ids we use a fixed-length digest of the name, which is
/// deterministic (so a retried CreateVolume finds its volume) and can never escape a directory.
/// </summary>
public static class NameHash
{
    public static string Of(string name) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)))[..24];
}
