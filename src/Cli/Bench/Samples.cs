using System.Globalization;

namespace SolarCsi.Cli;

/// <summary>
/// Latencies of one step, in milliseconds. Percentiles are by nearest rank, so with fewer than 100 samples p99 is
/// the slowest sample: the reports say how many samples each figure has.
/// </summary>
internal sealed class Samples
{
    private readonly List<double> _ms = [];

    public void Add(TimeSpan elapsed)
    {
        lock (_ms) _ms.Add(elapsed.TotalMilliseconds);
    }

    public void AddMs(double ms)
    {
        lock (_ms) _ms.Add(ms);
    }

    public int Count
    {
        get { lock (_ms) return _ms.Count; }
    }

    public double LastAdded
    {
        get { lock (_ms) return _ms.Count == 0 ? double.NaN : _ms[^1]; }
    }

    public double Median => Percentile(50);
    public double P99 => Percentile(99);
    public double Min => Percentile(0);
    public double Max => Percentile(100);
    public double Sum
    {
        get { lock (_ms) return _ms.Sum(); }
    }

    public double Percentile(double p)
    {
        double[] sorted;
        lock (_ms) sorted = [.. _ms.Order()];
        if (sorted.Length == 0) return double.NaN;
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank, 1, sorted.Length) - 1];
    }

    /// <summary>Milliseconds with the precision the figure deserves.</summary>
    public static string Ms(double ms) => double.IsNaN(ms) ? "–"
        : (ms < 10 ? ms.ToString("0.00", CultureInfo.InvariantCulture) : ms < 100 ? ms.ToString("0.0", CultureInfo.InvariantCulture) : ms.ToString("0", CultureInfo.InvariantCulture)) + " ms";

    public static string Ratio(double a, double b) => double.IsNaN(a) || double.IsNaN(b) || b <= 0 ? "–" : (a / b).ToString("0.00", CultureInfo.InvariantCulture);
}

/// <summary>Samples by name, created on first use.</summary>
internal sealed class SampleSet
{
    private readonly Dictionary<string, Samples> _byName = [];

    public Samples this[string name]
    {
        get
        {
            lock (_byName)
            {
                if (!_byName.TryGetValue(name, out var samples)) _byName[name] = samples = new Samples();
                return samples;
            }
        }
    }

    public async Task<T> TimeAsync<T>(string name, Func<Task<T>> step)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = await step();
        this[name].Add(watch.Elapsed);
        return result;
    }

    public async Task TimeAsync(string name, Func<Task> step)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await step();
        this[name].Add(watch.Elapsed);
    }
}
