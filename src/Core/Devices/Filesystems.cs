using SolarCsi.Core.Processes;

namespace SolarCsi.Core.Devices;

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
