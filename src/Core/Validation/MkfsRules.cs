using SolarCsi.Core.Errors;

namespace SolarCsi.Core.Validation;

/// <summary>
/// mkfs options that reach outside the volume. Tokens are already plain words (no '/', no shell characters), but a
/// relative path is still a path: the plugin runs in '/', so `mkfs.ext4 -d etc` would copy the host's /etc into a
/// tenant's volume, `-z var/x` writes an undo file onto the host, `mkfs.xfs -p etc/x` reads a host file as a proto
/// file, and an external journal or log device (`-J device=`, `-l logdev=`) points mkfs at another device. Those
/// options are refused for the filesystem they mean that in; everything else (labels, reserved blocks, features,
/// stripe geometry) passes.
/// </summary>
public static class MkfsRules
{
    private static readonly IReadOnlyDictionary<string, string[]> RefusedOptions = new Dictionary<string, string[]>
    {
        // -d root directory or tarball to copy in, -l bad-blocks list file, -z undo file.
        ["ext4"] = ["-d", "-l", "-z"],
        // -p proto file (and the host files it names), -c config file.
        ["xfs"] = ["-p", "-c"],
    };

    // Sub-options that name a file or device (ext4 -J device=…; xfs -l logdev=…, -r rtdev=…, -d name=… or file), in
    // the value of the options that take sub-options.
    private static readonly string[] SubOptionFlags = ["-J", "-d", "-l", "-r"];
    private static readonly string[] RefusedSubOptions = ["device=", "logdev=", "rtdev=", "name=", "file"];

    /// <summary>Why <paramref name="options"/> may not format a <paramref name="fsType"/> volume; null when they may.</summary>
    public static string? WhyRefused(string fsType, IReadOnlyList<string> options)
    {
        var refused = RefusedOptions.GetValueOrDefault(fsType, []);
        string? previous = null;
        foreach (var option in options)
        {
            // A short option may carry its value attached (-dDIR).
            var isFlag = option.StartsWith('-');
            var flag = isFlag && !option.StartsWith("--", StringComparison.Ordinal) && option.Length > 2 ? option[..2] : option;
            if (isFlag && refused.Contains(flag))
                return $"mkfs option '{option}' reads or writes host files or devices for {fsType}; only options that shape the volume's own filesystem are accepted";
            var value = isFlag ? option.Length > 2 && SubOptionFlags.Contains(flag) ? option[2..] : null : SubOptionFlags.Contains(previous) ? option : null;
            if (value is not null && value.Split(',').Any(sub => RefusedSubOptions.Any(r => r.EndsWith('=') ? sub.StartsWith(r, StringComparison.Ordinal) : sub == r)))
                return $"mkfs sub-option '{value}' names a file or device outside the volume; refused";
            previous = isFlag ? flag : null;
        }
        return null;
    }

    public static void Require(string fsType, IReadOnlyList<string> options)
    {
        if (WhyRefused(fsType, options) is { } why) throw CsiErrors.InvalidArgument($"parameter '{VolumeParameters.MkfsOptionsKey}': {why}");
    }
}
