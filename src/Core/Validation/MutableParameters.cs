using SolarCsi.Core.Errors;
using SolarCsi.Core.Hosting;

namespace SolarCsi.Core.Validation;

/// <summary>
/// Parameters that may change on a live volume (CreateVolume's mutable_parameters, ControllerModifyVolume; in
/// Kubernetes a VolumeAttributesClass). Today: the bandwidth limit of NBD volumes, enforced at the export by
/// nbdkit's rate filter, which re-reads its limit while serving, so the volume stays attached.
/// </summary>
public static class MutableParameters
{
    public const string BandwidthLimitKey = "bandwidthLimit";
    public const string Unlimited = "unlimited";
    public const long MinBandwidth = 1L << 20;
    public const long MaxBandwidth = 100L << 30;

    /// <summary>Checks every key and value for <paramref name="media"/>; returns them normalised (bytes per second or "unlimited").</summary>
    public static Dictionary<string, string> Parse(string media, IReadOnlyDictionary<string, string> parameters)
    {
        var parsed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in parameters)
        {
            if (key != BandwidthLimitKey)
                throw CsiErrors.InvalidArgument($"unknown mutable parameter '{Ids.StorageId.Printable(key)}' (known: {BandwidthLimitKey})");
            if (media != VolumeParameters.NbdMedia)
                throw CsiErrors.InvalidArgument($"mutable parameter '{key}' applies to media '{VolumeParameters.NbdMedia}' only, not '{media}'");
            parsed[key] = value == Unlimited ? Unlimited : BandwidthOf(value).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return parsed;
    }

    /// <summary>The limit in bytes per second; null for unlimited or unset.</summary>
    public static long? BandwidthLimit(IReadOnlyDictionary<string, string> parameters) =>
        parameters.TryGetValue(BandwidthLimitKey, out var value) && value != Unlimited ? BandwidthOf(value) : null;

    private static long BandwidthOf(string value)
    {
        long bytes;
        try { bytes = Quantity.Parse(value); }
        catch (FormatException) { throw CsiErrors.InvalidArgument($"mutable parameter '{BandwidthLimitKey}': '{Ids.StorageId.Printable(value)}' is not bytes per second (e.g. 100Mi) or '{Unlimited}'"); }
        if (bytes < MinBandwidth || bytes > MaxBandwidth)
            throw CsiErrors.InvalidArgument($"mutable parameter '{BandwidthLimitKey}': {bytes} bytes/s is outside {MinBandwidth}..{MaxBandwidth}");
        return bytes;
    }
}
