using SolarCsi.Node.Attach;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node;

/// <summary>
/// Said once at start: what this node cannot do because a host program is missing, with the package to install.
/// Pools that lack a tool are not offered (PoolSet announces them unavailable); features that lack one are refused
/// when asked for, with FAILED_PRECONDITION naming the package.
/// </summary>
public static class HostToolReport
{
    private static readonly (string Feature, string[] Tools)[] Features =
    [
        ("ext4 volumes", ["mkfs.ext4", "e2fsck", "resize2fs", "dumpe2fs"]),
        ("xfs volumes", ["mkfs.xfs", "xfs_growfs"]),
        ("snapshots and clones of mounted volumes", ["fsfreeze"]),
    ];

    public static IReadOnlyList<string> Problems(PoolSet pools, AttacherSet attachers)
    {
        var problems = pools.All.Select(pools.Unavailable).OfType<string>().Select(reason => reason + ": not offered").ToList();
        if (HostTools.MissingOf(attachers.Nbd.RequiredTools) is { Count: > 0 } nbd)
            problems.Add($"NBD volumes cannot be attached on this node ({attachers.Nbd.Kind} path): missing {HostTools.Describe(nbd)}");
        foreach (var (feature, tools) in Features)
            if (HostTools.MissingOf(tools) is { Count: > 0 } missing)
                problems.Add($"{feature} are refused: missing {HostTools.Describe(missing)}");
        return problems;
    }

    public static void Log(Serilog.ILogger log, PoolSet pools, AttacherSet attachers)
    {
        var problems = Problems(pools, attachers);
        if (problems.Count == 0) log.Information("host tools: every tool the node's pools and attach paths use is installed");
        foreach (var problem in problems) log.Warning("host tools: {Problem} (scripts/install-prereqs.sh installs them all)", problem);
    }
}
