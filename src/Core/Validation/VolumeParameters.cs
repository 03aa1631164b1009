using System.Text.RegularExpressions;
using SolarCsi.Core.Errors;

namespace SolarCsi.Core.Validation;

/// <summary>
/// StorageClass parameters we understand; anything else is refused by name so typos surface at once, and so is a
/// parameter that makes no sense for the chosen media.
/// </summary>
public sealed partial record VolumeParameters(string Media, string Pool, IReadOnlyList<string> MkfsOptions, string? LvmType)
{
    public const string MediaKey = "media";
    public const string PoolKey = "pool";
    public const string MkfsOptionsKey = "mkfsOptions";
    public const string LvmTypeKey = "lvmType";
    public const string DefaultPool = "default";
    public const string FileMedia = "file";
    public const string NbdMedia = "nbd";
    public const string TmpfsMedia = "tmpfs";
    public const string LvmMedia = "lvm";
    public const string DiskMedia = "disk";
    public const string PmemMedia = "pmem";
    public const string Thin = "thin";
    public const string Thick = "thick";

    /// <summary>Keys the external-provisioner may add on its own (--extra-create-metadata, csi.storage.k8s.io/fstype).</summary>
    private const string ProvisionerPrefix = "csi.storage.k8s.io/";

    public static readonly IReadOnlySet<string> KnownMedia = new HashSet<string> { FileMedia, NbdMedia, TmpfsMedia, LvmMedia, DiskMedia, PmemMedia };

    /// <summary>Media whose volumes live on one node and are reachable only there.</summary>
    public static bool IsLocal(string media) => media != NbdMedia;

    /// <summary>
    /// Media whose snapshot freezes the volume's filesystem itself: an LVM thin snapshot suspends its origin through
    /// device-mapper, which freezes the filesystem on it. A filesystem already frozen with FIFREEZE makes that suspend
    /// fail with EBUSY on Linux before 6.8 (Debian 12's 6.1 among them; measured in the VM test host), so a group's
    /// freeze must leave these members to their own snapshot.
    /// </summary>
    public static bool SnapshotFreezesItself(string media) => media == LvmMedia;

    public static VolumeParameters Parse(IReadOnlyDictionary<string, string> parameters)
    {
        string media = FileMedia, pool = DefaultPool;
        string? lvmType = null;
        IReadOnlyList<string> mkfs = [];
        foreach (var (key, value) in parameters)
        {
            switch (key)
            {
                case MediaKey:
                    if (!KnownMedia.Contains(value))
                        throw CsiErrors.InvalidArgument($"parameter '{MediaKey}': unknown media '{value}' (known: {string.Join(", ", KnownMedia)})");
                    media = value;
                    break;
                case PoolKey:
                    if (!Ids.StorageId.IsValidPool(value))
                        throw CsiErrors.InvalidArgument($"parameter '{PoolKey}': '{value}' is not a valid pool name");
                    pool = value;
                    break;
                case MkfsOptionsKey:
                    mkfs = ParseMkfsOptions(value);
                    break;
                case LvmTypeKey:
                    if (value is not (Thin or Thick))
                        throw CsiErrors.InvalidArgument($"parameter '{LvmTypeKey}': '{value}' is neither '{Thin}' nor '{Thick}'");
                    lvmType = value;
                    break;
                default:
                    if (!key.StartsWith(ProvisionerPrefix, StringComparison.Ordinal))
                        throw CsiErrors.InvalidArgument($"unknown parameter '{key}'");
                    break;
            }
        }
        if (lvmType is not null && media != LvmMedia)
            throw CsiErrors.InvalidArgument($"parameter '{LvmTypeKey}' applies to media '{LvmMedia}' only, not '{media}'");
        if (mkfs.Count > 0 && media == TmpfsMedia)
            throw CsiErrors.InvalidArgument($"parameter '{MkfsOptionsKey}' does not apply to media '{TmpfsMedia}': there is nothing to format");
        return new VolumeParameters(media, pool, mkfs, lvmType);
    }

    /// <summary>
    /// Extra mkfs arguments, split on spaces. Each must look like an option or a plain value: they are passed as
    /// an argument array, but a device path or a shell metacharacter here is a mistake or an attack either way.
    /// </summary>
    public static IReadOnlyList<string> ParseMkfsOptions(string value)
    {
        var tokens = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (value.Length > 512) throw CsiErrors.InvalidArgument($"parameter '{MkfsOptionsKey}' is longer than 512 characters");
        foreach (var token in tokens)
            if (!MkfsToken().IsMatch(token))
                throw CsiErrors.InvalidArgument($"parameter '{MkfsOptionsKey}': '{Ids.StorageId.Printable(token)}' is not an mkfs option or value");
        if (tokens.Length > 0 && !tokens[0].StartsWith('-'))
            throw CsiErrors.InvalidArgument($"parameter '{MkfsOptionsKey}' must start with an option (e.g. '-m 0'), not '{Ids.StorageId.Printable(tokens[0])}'");
        return tokens;
    }

    [GeneratedRegex(@"^(-{1,2}[A-Za-z][A-Za-z0-9_-]*|[A-Za-z0-9^][A-Za-z0-9_.,:=^+-]*)$")]
    private static partial Regex MkfsToken();

    /// <summary>The parameters that define the volume, for comparing a repeated CreateVolume with the first.</summary>
    public Dictionary<string, string> Canonical()
    {
        var canonical = new Dictionary<string, string> { [MediaKey] = Media, [PoolKey] = Pool };
        if (MkfsOptions.Count > 0) canonical[MkfsOptionsKey] = string.Join(' ', MkfsOptions);
        if (LvmType is not null) canonical[LvmTypeKey] = LvmType;
        return canonical;
    }
}
