using System.Globalization;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Hosting;

namespace SolarCsi.Core.Validation;

/// <summary>Live rate limits a medium that takes them (<see cref="Media.Medium.TakesRateLimits"/>) enforces where it serves the volume; null = unlimited.</summary>
public sealed record RateLimits(long? BytesPerSecond, long? RequestsPerSecond)
{
    public static readonly RateLimits None = new(null, null);
}

/// <summary>
/// Parameters that may change on a live volume (CreateVolume's mutable_parameters, ControllerModifyVolume; in
/// Kubernetes a VolumeAttributesClass). Today: the bandwidth and request-rate limits of NBD volumes, enforced at
/// the export by nbdkit's rate filter and our request-rate filter (native/nbdkit-iops-filter), which both re-read
/// their limit while serving, so the volume stays attached.
/// </summary>
public static class MutableParameters
{
    public const string BandwidthLimitKey = "bandwidthLimit";
    public const string IopsLimitKey = "iopsLimit";
    public const string Unlimited = "unlimited";
    public const long MinBandwidth = 1L << 20;
    public const long MaxBandwidth = 100L << 30;
    public const long MinIops = 1;
    public const long MaxIops = 10_000_000;

    /// <summary>Checks every key and value for <paramref name="media"/>; returns them normalised (a number or "unlimited").</summary>
    public static Dictionary<string, string> Parse(string media, IReadOnlyDictionary<string, string> parameters)
    {
        var parsed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in parameters)
        {
            if (key is not (BandwidthLimitKey or IopsLimitKey))
                throw CsiErrors.InvalidArgument($"unknown mutable parameter '{Ids.StorageId.Printable(key)}' (known: {BandwidthLimitKey}, {IopsLimitKey})");
            if (!Media.MediaCatalog.Of(media).TakesRateLimits)
                throw CsiErrors.InvalidArgument($"mutable parameter '{key}' applies to media {string.Join(", ", Media.MediaCatalog.All.Where(m => m.TakesRateLimits).Select(m => $"'{m.Name}'"))} only, not '{media}'");
            parsed[key] = value == Unlimited ? Unlimited
                : (key == BandwidthLimitKey ? BandwidthOf(value) : IopsOf(value)).ToString(CultureInfo.InvariantCulture);
        }
        return parsed;
    }

    /// <summary>The limits recorded in a volume's parameters (already normalised by <see cref="Parse"/>).</summary>
    public static RateLimits Limits(IReadOnlyDictionary<string, string> parameters) => new(
        parameters.TryGetValue(BandwidthLimitKey, out var b) && b != Unlimited ? BandwidthOf(b) : null,
        parameters.TryGetValue(IopsLimitKey, out var r) && r != Unlimited ? IopsOf(r) : null);

    private static long BandwidthOf(string value)
    {
        long bytes;
        try { bytes = Quantity.Parse(value); }
        catch (FormatException) { throw CsiErrors.InvalidArgument($"mutable parameter '{BandwidthLimitKey}': '{Ids.StorageId.Printable(value)}' is not bytes per second (e.g. 100Mi) or '{Unlimited}'"); }
        if (bytes < MinBandwidth || bytes > MaxBandwidth)
            throw CsiErrors.InvalidArgument($"mutable parameter '{BandwidthLimitKey}': {bytes} bytes/s is outside {MinBandwidth}..{MaxBandwidth}");
        return bytes;
    }

    private static long IopsOf(string value)
    {
        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var iops))
            throw CsiErrors.InvalidArgument($"mutable parameter '{IopsLimitKey}': '{Ids.StorageId.Printable(value)}' is not a whole number of requests per second or '{Unlimited}'");
        if (iops < MinIops || iops > MaxIops)
            throw CsiErrors.InvalidArgument($"mutable parameter '{IopsLimitKey}': {iops} requests/s is outside {MinIops}..{MaxIops}");
        return iops;
    }
}
