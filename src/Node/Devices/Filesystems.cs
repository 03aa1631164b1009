using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Devices;

/// <summary>mkfs and online grow for the filesystems we support.</summary>
public sealed class Filesystems(IProcessRunner runner)
{
    public static readonly TimeSpan MkfsTimeout = TimeSpan.FromMinutes(10);

    public Task FormatAsync(string device, string fsType, IReadOnlyList<string> extraOptions, CancellationToken ct)
    {
        var (program, args) = FormatCommand(device, fsType, extraOptions);
        return runner.RunAsync(program, args, ct, MkfsTimeout);
    }

    /// <summary>
    /// The mkfs command line; <paramref name="extraOptions"/> (the StorageClass's mkfsOptions, validated token by
    /// token) go after ours, so a user's choice wins where the tool takes the last value, and before the device.
    /// </summary>
    public static (string Program, IReadOnlyList<string> Arguments) FormatCommand(string device, string fsType, IReadOnlyList<string>? extraOptions = null) => fsType switch
    {
        // Lazy init keeps mkfs of a large sparse volume fast; the kernel finishes it in the background.
        "ext4" => ("mkfs.ext4", ["-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", .. extraOptions ?? [], device]),
        "xfs" => ("mkfs.xfs", ["-q", "-K", .. extraOptions ?? [], device]),
        _ => throw new ArgumentException($"unsupported filesystem {fsType}", nameof(fsType)),
    };

    /// <summary>
    /// mkfs options for a filesystem that will be mounted with dax: the kernel refuses dax unless the block size is the
    /// page size, and mke2fs's "small" profile gives a volume under 512 MiB 1 KiB blocks (found in the VM test host:
    /// "EXT4-fs: unsupported blocksize for DAX"). A block size the StorageClass chose is left to it.
    /// </summary>
    public static IReadOnlyList<string> ForDax(string fsType, IReadOnlyList<string> options) =>
        fsType == "ext4" && !options.Any(o => o.StartsWith("-b", StringComparison.Ordinal))
            ? [.. options, "-b", Environment.SystemPageSize.ToString(System.Globalization.CultureInfo.InvariantCulture)]
            : options;

    /// <summary>
    /// Bytes an unmounted ext4 filesystem spans (block count × block size, from its superblock); a device larger
    /// than that came from a restore or clone into a bigger volume, or an expansion while detached.
    /// </summary>
    public async Task<long> Ext4SizeAsync(string device, CancellationToken ct)
    {
        var result = await runner.RunAsync("dumpe2fs", ["-h", "--", device], ct);
        return ParseExt4Size(result.StandardOutput) ?? throw new IOException($"dumpe2fs -h {device} printed no block count and size");
    }

    public static long? ParseExt4Size(string dumpe2fs)
    {
        long? count = null, size = null;
        foreach (var line in dumpe2fs.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon < 0) continue;
            var value = line[(colon + 1)..].Trim();
            switch (line[..colon].Trim())
            {
                case "Block count": count = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
                case "Block size": size = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
            }
        }
        return count * size;
    }

    /// <summary>
    /// Grows an unmounted ext4 to fill its device. Offline, because the resize then needs no CAP_SYS_RESOURCE and
    /// cannot race a writer; resize2fs insists on a forced check first (exit 1 = errors fixed, still fine to go on).
    /// </summary>
    public async Task GrowExt4OfflineAsync(string device, CancellationToken ct)
    {
        await runner.RunAsync("e2fsck", ["-f", "-p", "--", device], ct, MkfsTimeout, okExitCodes: [0, 1]);
        await runner.RunAsync("resize2fs", [device], ct, MkfsTimeout);
    }

    /// <summary>Grows a mounted filesystem to fill its device.</summary>
    public Task GrowAsync(string device, string mountPoint, string fsType, CancellationToken ct)
    {
        var (program, args) = GrowCommand(device, mountPoint, fsType);
        return runner.RunAsync(program, args, ct, MkfsTimeout);
    }

    public static (string Program, IReadOnlyList<string> Arguments) GrowCommand(string device, string mountPoint, string fsType) => fsType switch
    {
        "ext4" => ("resize2fs", [device]),
        "xfs" => ("xfs_growfs", [mountPoint]),
        _ => throw new ArgumentException($"unsupported filesystem {fsType}", nameof(fsType)),
    };
}
