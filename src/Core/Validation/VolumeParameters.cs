using SolarCsi.Core.Errors;

namespace SolarCsi.Core.Validation;

/// <summary>StorageClass parameters we understand; anything else is refused by name so typos surface at once.</summary>
public sealed record VolumeParameters(string Media, string Pool)
{
    public const string MediaKey = "media";
    public const string PoolKey = "pool";
    public const string DefaultPool = "default";
    public const string FileMedia = "file";
    public const string NbdMedia = "nbd";

    /// <summary>Keys the external-provisioner may add on its own (--extra-create-metadata).</summary>
    private const string ProvisionerPrefix = "csi.storage.k8s.io/";

    public static readonly IReadOnlySet<string> KnownMedia = new HashSet<string> { FileMedia, NbdMedia };

    public static VolumeParameters Parse(IReadOnlyDictionary<string, string> parameters)
    {
        string media = FileMedia, pool = DefaultPool;
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
                default:
                    if (!key.StartsWith(ProvisionerPrefix, StringComparison.Ordinal))
                        throw CsiErrors.InvalidArgument($"unknown parameter '{key}'");
                    break;
            }
        }
        return new VolumeParameters(media, pool);
    }

    /// <summary>The parameters that define the volume, for comparing a repeated CreateVolume with the first.</summary>
    public Dictionary<string, string> Canonical() =>
        new Dictionary<string, string> { [MediaKey] = Media, [PoolKey] = Pool };
}
