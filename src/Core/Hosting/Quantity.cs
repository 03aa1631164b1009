using System.Globalization;

namespace SolarCsi.Core.Hosting;

/// <summary>Kubernetes-style byte quantities: 1073741824, 512Mi, 20Gi, 1Ti, 10G.</summary>
public static class Quantity
{
    public static long Parse(string text)
    {
        var suffixes = new (string Suffix, long Factor)[]
        {
            ("Ki", 1L << 10), ("Mi", 1L << 20), ("Gi", 1L << 30), ("Ti", 1L << 40),
            ("K", 1000), ("M", 1000_000), ("G", 1000_000_000), ("T", 1000_000_000_000),
        };
        foreach (var (suffix, factor) in suffixes)
            if (text.EndsWith(suffix, StringComparison.Ordinal) &&
                long.TryParse(text[..^suffix.Length], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= long.MaxValue / factor)
                return n * factor;
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes)
            ? bytes : throw new FormatException($"'{text}' is not a byte quantity");
    }
}
