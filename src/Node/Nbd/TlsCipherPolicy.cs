using System.Text;
using SolarCsi.Core.Storage;

namespace SolarCsi.Node.Nbd;

/// <summary>
/// Steers GnuTLS in nbdkit and libnbd (servers, the node's TLS proxies, nbdfuse) to AES-GCM on CPUs with AES
/// instructions. Left alone, a TLS 1.3 PSK session here negotiates ChaCha20-Poly1305, which nettle 3.8 runs
/// without assembly on x86_64: measured on a 2-core EPYC, reading 1 GiB over one connection took 5.5 s with
/// ChaCha20 and 1.3 s with AES-128-GCM (bench/README.md). On CPUs without AES instructions ChaCha20 is the fast
/// one, so nothing is changed there. GnuTLS reads the policy from the file named by GNUTLS_SYSTEM_PRIORITY_FILE;
/// an operator's own system policy (/etc/gnutls/config, or that variable already set) always wins.
/// </summary>
public static class TlsCipherPolicy
{
    public const string EnvironmentVariable = "GNUTLS_SYSTEM_PRIORITY_FILE";
    public const string SystemPolicyFile = "/etc/gnutls/config";

    /// <summary>GnuTLS's system-wide configuration syntax: the overrides apply to every priority string.</summary>
    public const string PreferAesPolicy = "[overrides]\ntls-disabled-cipher = CHACHA20-POLY1305\n";

    /// <summary>Whether a /proc/cpuinfo text lists the AES instructions (x86 "aes", arm64 "aes" in Features).</summary>
    public static bool CpuHasAes(string cpuinfo) =>
        cpuinfo.Split('\n').Where(IsFeatureLine).Any(l => l[(l.IndexOf(':') + 1)..]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("aes", StringComparer.Ordinal));

    private static bool IsFeatureLine(string line) =>
        line.IndexOf(':') is > 0 and var colon && line[..colon].Trim() is "flags" or "Features";

    /// <summary>
    /// The environment assignments ("NAME=value") the NBD helpers get: empty when the CPU lacks AES instructions
    /// or the host has its own policy; otherwise the policy file, written under <paramref name="stateDir"/>.
    /// </summary>
    public static async Task<IReadOnlyList<string>> EnvironmentAsync(string stateDir, CancellationToken ct)
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } || File.Exists(SystemPolicyFile)) return [];
        var cpuinfo = File.Exists("/proc/cpuinfo") ? await File.ReadAllTextAsync("/proc/cpuinfo", ct) : "";
        if (!CpuHasAes(cpuinfo)) return [];
        var path = Path.Combine(stateDir, "gnutls-prefer-aes.conf");
        if (!File.Exists(path) || await File.ReadAllTextAsync(path, ct) != PreferAesPolicy)
            await AtomicFile.WriteAsync(path, Encoding.UTF8.GetBytes(PreferAesPolicy), ct,
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return [$"{EnvironmentVariable}={path}"];
    }
}
