using Csi.V1;
using SolarCsi.Core.Errors;

namespace SolarCsi.Core.Validation;

/// <summary>Turns a CSI capacity_range into one size, rounded to whole MiB as loop devices and mkfs prefer.</summary>
public static class CapacityRules
{
    public const long MiB = 1024 * 1024;
    public const long DefaultBytes = 1024 * MiB;
    /// <summary>Above this a request is a typo or an attack, not a volume.</summary>
    public const long MaxBytes = 64L * 1024 * 1024 * 1024 * 1024;

    public static long Resolve(CapacityRange? range, long minimumBytes = 0)
    {
        long required = range?.RequiredBytes ?? 0, limit = range?.LimitBytes ?? 0;
        if (required < 0 || limit < 0) throw CsiErrors.InvalidArgument("capacity_range must not be negative");
        if (limit > 0 && required > limit)
            throw CsiErrors.InvalidArgument($"capacity_range.required_bytes {required} exceeds limit_bytes {limit}");
        if (required > MaxBytes) throw CsiErrors.OutOfRange($"required_bytes {required} exceeds the maximum volume size {MaxBytes}");

        var wanted = Math.Max(required == 0 ? (limit > 0 ? Math.Min(DefaultBytes, limit) : DefaultBytes) : required, minimumBytes);
        var rounded = RoundUp(wanted);
        if (limit > 0 && rounded > limit)
        {
            // Exact ranges that are not MiB multiples: honour the limit rather than the rounding.
            if (wanted <= limit) return wanted;
            throw CsiErrors.OutOfRange($"capacity {wanted} does not fit limit_bytes {limit}");
        }
        return rounded;
    }

    public static bool Satisfies(long capacity, CapacityRange? range) =>
        range is null ||
        ((range.RequiredBytes == 0 || capacity >= range.RequiredBytes) &&
         (range.LimitBytes == 0 || capacity <= range.LimitBytes));

    public static long RoundUp(long bytes) => (bytes + MiB - 1) / MiB * MiB;
}
