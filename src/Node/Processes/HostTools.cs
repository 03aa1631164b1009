using System.Collections.Concurrent;
using Grpc.Core;
using SolarCsi.Core.Errors;

namespace SolarCsi.Node.Processes;

/// <summary>
/// The programs SolarCsi runs on a host and the Debian package that ships each, so a missing one is reported as
/// what it is — FAILED_PRECONDITION naming the tool and the package to install — instead of an exec failure
/// surfacing as INTERNAL halfway through an operation.
/// </summary>
public static class HostTools
{
    /// <summary>Debian 12 package of every program we exec (scripts/install-prereqs.sh installs them all).</summary>
    public static readonly IReadOnlyDictionary<string, string> Packages = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["losetup"] = "mount", ["mount"] = "mount", ["umount"] = "mount",
        ["blkid"] = "util-linux", ["fsfreeze"] = "util-linux", ["wipefs"] = "util-linux", ["blkdiscard"] = "util-linux",
        ["lsblk"] = "util-linux", ["setsid"] = "util-linux",
        ["cp"] = "coreutils", ["env"] = "coreutils", ["tar"] = "tar", ["sh"] = "dash",
        ["mkfs.ext4"] = "e2fsprogs", ["e2fsck"] = "e2fsprogs", ["resize2fs"] = "e2fsprogs", ["dumpe2fs"] = "e2fsprogs",
        ["mkfs.xfs"] = "xfsprogs", ["xfs_growfs"] = "xfsprogs",
        ["nbdkit"] = "nbdkit", ["nbdfuse"] = "libnbd-bin", ["nbdinfo"] = "libnbd-bin", ["fusermount3"] = "fuse3", ["nbd-client"] = "nbd-client",
        ["lvm"] = "lvm2", ["lvcreate"] = "lvm2", ["lvs"] = "lvm2", ["vgs"] = "lvm2", ["lvremove"] = "lvm2", ["lvextend"] = "lvm2", ["lvchange"] = "lvm2",
        ["ndctl"] = "ndctl",
        ["fio"] = "fio",
    };

    // Only positive answers are remembered: a package installed while the plugin runs is found at the next call.
    private static readonly ConcurrentDictionary<string, string> Found = new(StringComparer.Ordinal);

    public static string PackageOf(string program) => Packages.GetValueOrDefault(Path.GetFileName(program)) ?? Path.GetFileName(program);

    /// <summary>Where <paramref name="program"/> would be executed from, or null when it is not installed.</summary>
    public static string? Locate(string program)
    {
        if (Found.TryGetValue(program, out var known) && File.Exists(known)) return known;
        var candidates = program.Contains('/')
            ? [program]
            : (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                .Split(':', StringSplitOptions.RemoveEmptyEntries).Select(dir => Path.Combine(dir, program));
        foreach (var path in candidates)
        {
            if (!File.Exists(path) || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
                continue;
            Found[program] = path;
            return path;
        }
        return null;
    }

    public static IReadOnlyList<string> MissingOf(IEnumerable<string> programs) => programs.Where(p => Locate(p) is null).Distinct().ToArray();

    /// <summary>"nbdkit (Debian package nbdkit), nbdfuse (Debian package libnbd-bin)".</summary>
    public static string Describe(IEnumerable<string> missing) =>
        string.Join(", ", missing.Select(p => $"{p} (Debian package {PackageOf(p)})"));

    public static RpcException Missing(string program) =>
        CsiErrors.FailedPrecondition($"host tool '{program}' is not installed on this node: install the Debian package '{PackageOf(program)}'");

    /// <summary>Throws FAILED_PRECONDITION naming the tool and its package when <paramref name="program"/> is not installed.</summary>
    public static void Require(string program)
    {
        if (Locate(program) is null) throw Missing(program);
    }
}
