using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace SolarCsi.Core.Metrics;

/// <summary>
/// The plugin's Prometheus metrics, process-wide like the process they describe. Small on purpose: counters,
/// gauges and one latency histogram, plus gauges computed at scrape time (pool capacity, attachment health),
/// rendered in the Prometheus text format without reflection so the plugins stay NativeAOT-friendly.
/// </summary>
public sealed class PluginMetrics
{
    public static PluginMetrics Current { get; } = new();

    /// <summary>Upper bounds of the latency buckets, in seconds: CSI calls range from microseconds to a long mkfs.</summary>
    public static readonly double[] LatencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

    private readonly ConcurrentDictionary<(string Method, string Code), Histogram> _latency = new();
    private readonly ConcurrentDictionary<string, long> _inFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _reconcilerActions = new(StringComparer.Ordinal);
    private readonly List<Func<CancellationToken, Task<IEnumerable<GaugeSample>>>> _collectors = [];

    public void ObserveCall(string method, string code, TimeSpan duration) =>
        _latency.GetOrAdd((method, code), _ => new Histogram()).Observe(duration.TotalSeconds);

    public IDisposable TrackInFlight(string method)
    {
        _inFlight.AddOrUpdate(method, 1, (_, n) => n + 1);
        return new Release(() => _inFlight.AddOrUpdate(method, 0, (_, n) => n - 1));
    }

    /// <summary>One thing the reconciler fixed without being asked (e.g. "detach-residual-loop").</summary>
    public void CountReconcilerAction(string action) => _reconcilerActions.AddOrUpdate(action, 1, (_, n) => n + 1);

    /// <summary>Gauges whose values are read when Prometheus scrapes (capacity, attachment state).</summary>
    public void AddCollector(Func<CancellationToken, Task<IEnumerable<GaugeSample>>> collector)
    {
        lock (_collectors) _collectors.Add(collector);
    }

    public async Task<string> RenderAsync(CancellationToken ct)
    {
        var text = new StringBuilder();
        Header(text, "csi_operation_duration_seconds", "histogram", "CSI call latency by method and gRPC status code");
        foreach (var ((method, code), histogram) in _latency.OrderBy(kv => kv.Key.Method, StringComparer.Ordinal).ThenBy(kv => kv.Key.Code, StringComparer.Ordinal))
            histogram.Render(text, "csi_operation_duration_seconds", $"method=\"{Escape(method)}\",code=\"{Escape(code)}\"");

        Header(text, "csi_operations_in_flight", "gauge", "CSI calls running now, by method");
        foreach (var (method, n) in _inFlight.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            text.Append($"csi_operations_in_flight{{method=\"{Escape(method)}\"}} {n}\n");

        Header(text, "solar_reconciler_actions_total", "counter", "residual mounts, devices and helpers the reconciler cleaned up, by action");
        foreach (var (action, n) in _reconcilerActions.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            text.Append($"solar_reconciler_actions_total{{action=\"{Escape(action)}\"}} {n}\n");

        Func<CancellationToken, Task<IEnumerable<GaugeSample>>>[] collectors;
        lock (_collectors) collectors = [.. _collectors];
        var samples = new List<GaugeSample>();
        foreach (var collect in collectors) samples.AddRange(await collect(ct));
        foreach (var family in samples.GroupBy(s => s.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            Header(text, family.Key, "gauge", family.First().Help);
            foreach (var s in family)
            {
                text.Append(family.Key);
                if (s.Labels.Count > 0) text.Append('{').Append(string.Join(',', s.Labels.Select(l => $"{l.Key}=\"{Escape(l.Value)}\""))).Append('}');
                text.Append(' ').Append(Number(s.Value)).Append('\n');
            }
        }
        return text.ToString();
    }

    private static void Header(StringBuilder text, string name, string type, string help) =>
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    public static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private sealed class Histogram
    {
        private readonly long[] _buckets = new long[LatencyBuckets.Length];
        private long _count;
        private double _sum;
        private readonly Lock _lock = new();

        public void Observe(double seconds)
        {
            lock (_lock)
            {
                for (var i = 0; i < LatencyBuckets.Length; i++)
                    if (seconds <= LatencyBuckets[i]) _buckets[i]++;
                _count++;
                _sum += seconds;
            }
        }

        public void Render(StringBuilder text, string name, string labels)
        {
            lock (_lock)
            {
                for (var i = 0; i < LatencyBuckets.Length; i++)
                    text.Append($"{name}_bucket{{{labels},le=\"{Number(LatencyBuckets[i])}\"}} {_buckets[i]}\n");
                text.Append($"{name}_bucket{{{labels},le=\"+Inf\"}} {_count}\n");
                text.Append($"{name}_sum{{{labels}}} {Number(_sum)}\n");
                text.Append($"{name}_count{{{labels}}} {_count}\n");
            }
        }
    }

    private sealed class Release(Action release) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) release();
        }
    }
}

/// <summary>A gauge value read at scrape time.</summary>
public sealed record GaugeSample(string Name, string Help, IReadOnlyList<KeyValuePair<string, string>> Labels, double Value);
