using System.Text.RegularExpressions;
using SolarCsi.Core.Errors;
using MediaCatalog = SolarCsi.Core.Media.MediaCatalog;
using Medium = SolarCsi.Core.Media.Medium;

namespace SolarCsi.Core.Validation;

/// <summary>
/// StorageClass parameters we understand; anything else is refused by name so typos surface at once, and so is a
/// parameter that makes no sense for the chosen media.
/// </summary>
/// <param name="MediumParameters">the parameters only the chosen medium takes (<see cref="SolarCsi.Core.Media.Medium.OwnParameters"/>), e.g. lvmType.</param>
public sealed partial record VolumeParameters(string Media, string Pool, IReadOnlyList<string> MkfsOptions, IReadOnlyDictionary<string, string> MediumParameters)
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

    public static VolumeParameters Parse(IReadOnlyDictionary<string, string> parameters)
    {
        var medium = MediaCatalog.File;
        string pool = DefaultPool;
        var own = new Dictionary<string, string>(StringComparer.Ordinal);
        IReadOnlyList<string> mkfs = [];
        foreach (var (key, value) in parameters)
        {
            switch (key)
            {
                case MediaKey:
                    medium = MediaCatalog.Find(value) ?? throw CsiErrors.InvalidArgument(
                        $"parameter '{MediaKey}': unknown media '{Ids.StorageId.Printable(value)}' (known: {string.Join(", ", MediaCatalog.All.Select(m => m.Name))})");
                    break;
                case PoolKey:
                    if (!Ids.StorageId.IsValidPool(value))
                        throw CsiErrors.InvalidArgument($"parameter '{PoolKey}': '{value}' is not a valid pool name");
                    pool = value;
                    break;
                case MkfsOptionsKey:
                    mkfs = ParseMkfsOptions(value);
                    break;
                default:
                    if (MediaCatalog.All.FirstOrDefault(m => m.OwnParameters.ContainsKey(key)) is { } owner)
                    {
                        if (!owner.OwnParameters[key].Contains(value))
                            throw CsiErrors.InvalidArgument($"parameter '{key}': '{Ids.StorageId.Printable(value)}' is not one of {string.Join(", ", owner.OwnParameters[key].Order(StringComparer.Ordinal).Select(v => $"'{v}'"))}");
                        own[key] = value;
                    }
                    else if (!key.StartsWith(ProvisionerPrefix, StringComparison.Ordinal))
                        throw CsiErrors.InvalidArgument($"unknown parameter '{Ids.StorageId.Printable(key)}'");
                    break;
            }
        }
        // Checked once the medium is known: parameters come in no particular order.
        foreach (var key in own.Keys)
            if (!medium.OwnParameters.ContainsKey(key))
                throw CsiErrors.InvalidArgument($"parameter '{key}' applies to media '{MediaCatalog.All.First(m => m.OwnParameters.ContainsKey(key)).Name}' only, not '{medium.Name}'");
        if (mkfs.Count > 0 && !medium.IsFormatted)
            throw CsiErrors.InvalidArgument($"parameter '{MkfsOptionsKey}' does not apply to media '{medium.Name}': there is nothing to format");
        return new VolumeParameters(medium.Name, pool, mkfs, own);
    }

    /// <summary>The medium these parameters chose.</summary>
    public Medium Medium => MediaCatalog.Of(Media);

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
        foreach (var (key, value) in MediumParameters) canonical[key] = value;
        return canonical;
    }
}
