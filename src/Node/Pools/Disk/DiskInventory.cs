using System.Text.RegularExpressions;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;

namespace SolarCsi.Node.Pools.Disk;

/// <summary>A disk the configured patterns match: its stable path, what the kernel calls it, and what is on it.</summary>
public sealed record DiskCandidate(string Path, string KernelName, long SizeBytes, string? Identity, bool InUse, bool Blank);

/// <summary>
/// Finds the disks a pool may hand out. A disk qualifies when the configured patterns match it, it is a whole
/// disk (not a partition) at least the minimum size with a stable identity, and nothing uses it: not mounted,
/// no holders (device-mapper, md), no partitions. Whether it is blank is told apart from "in use": a disk with
/// a signature we did not write is never handed out, even if nothing mounts it.
/// </summary>
public sealed class DiskInventory(IReadOnlyList<string> patterns, long minSizeBytes, BlockDevices devices, IMounter mounter, string sysBlock = "/sys/class/block")
{
    /// <param name="probe">whether to ask blkid whether each unused disk is blank (one process per disk); without it
    /// <see cref="DiskCandidate.Blank"/> is false for all, and the caller probes the ones it considers
    /// (<see cref="IsBlankAsync"/>).</param>
    public async Task<IReadOnlyList<DiskCandidate>> ScanAsync(CancellationToken ct, bool probe = true)
    {
        var mounts = await mounter.ListAsync(ct);
        var found = new List<DiskCandidate>();
        foreach (var path in Match(patterns))
        {
            var kernel = DeviceNames.KernelName(path);
            var dir = System.IO.Path.Combine(sysBlock, kernel);
            if (!Directory.Exists(dir) || File.Exists(System.IO.Path.Combine(dir, "partition"))) continue;
            var size = devices.SizeOf(path);
            if (size <= 0 || size < minSizeBytes) continue;
            if (found.Any(d => d.KernelName == kernel)) continue;
            var majorMinor = DeviceNames.MajorMinor(path, sysBlock);
            // A filesystem on it (same major:minor) or the device node itself bound somewhere (raw block).
            var inUse = mounts.PlacesOfDevice("/dev/" + kernel, majorMinor).Count > 0
                        || HasEntries(System.IO.Path.Combine(dir, "holders"))
                        || Directory.EnumerateDirectories(dir, kernel + "*").Any();
            var blank = probe && !inUse && await IsBlankAsync(path, ct);
            found.Add(new DiskCandidate(path, kernel, size, DiskIdentity.Of(kernel, sysBlock), inUse, blank));
        }
        return found;
    }

    /// <summary>No signature on the disk (no filesystem, partition table, LVM, RAID … that blkid knows).</summary>
    public async Task<bool> IsBlankAsync(string path, CancellationToken ct) => (await devices.ProbeAsync(path, ct)).Count == 0;

    private static bool HasEntries(string dir) => Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any();

    /// <summary>Paths under /dev matching the patterns; wildcards only in the last part (checked by the configuration).</summary>
    public static IEnumerable<string> Match(IReadOnlyList<string> patterns)
    {
        foreach (var pattern in patterns)
        {
            var dir = System.IO.Path.GetDirectoryName(pattern)!;
            var glob = System.IO.Path.GetFileName(pattern);
            if (!Directory.Exists(dir)) continue;
            var regex = new Regex("^" + Regex.Escape(glob).Replace(@"\*", ".*").Replace(@"\?", ".") + "$");
            foreach (var entry in Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal))
                if (regex.IsMatch(System.IO.Path.GetFileName(entry))) yield return entry;
        }
    }
}
