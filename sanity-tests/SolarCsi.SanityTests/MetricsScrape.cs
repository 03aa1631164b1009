using System.Globalization;

namespace SolarCsi.SanityTests;

/// <summary>Reads a plugin's /metrics as Prometheus would, into "name{labels}" → value.</summary>
internal static class MetricsScrape
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public static async Task<IReadOnlyDictionary<string, double>> ReadAsync(string url)
    {
        var text = await Http.GetStringAsync(url);
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#')) continue;
            var space = line.LastIndexOf(' ');
            samples[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }
        return samples;
    }

    /// <summary>The sample's value, 0 when the plugin has not reported it yet (a counter that never moved).</summary>
    public static async Task<double> ValueAsync(string url, string series) =>
        (await ReadAsync(url)).GetValueOrDefault(series);
}
