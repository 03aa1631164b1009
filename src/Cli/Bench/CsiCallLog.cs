using System.Globalization;
using System.Text.RegularExpressions;

namespace SolarCsi.Cli;

/// <summary>
/// The plugins' one line per call — `… [component] csi Method volume=… code=… duration_ms=…` — read back from a
/// LocalCluster run's logs. The node plugin's agent endpoint logs the same way, so calls are sorted into CSI calls
/// (what the CO makes), agent calls (controller → node agents) and heartbeats.
/// </summary>
internal static partial class CsiCallLog
{
    public sealed record Call(DateTimeOffset At, string Component, string Method, string Code, double Ms, string Kind);

    private static readonly HashSet<string> IdentityMethods = ["Probe", "GetPluginInfo", "GetPluginCapabilities"];

    [GeneratedRegex(@"^(?<at>\S+) \w+ \[(?<component>[^\]]+)\] csi (?<method>\w+) volume=\S* code=(?<code>\w+) duration_ms=(?<ms>\d+)")]
    private static partial Regex Line();

    public static IEnumerable<Call> Parse(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            var m = Line().Match(line);
            if (!m.Success) continue;
            var component = m.Groups["component"].Value;
            var method = m.Groups["method"].Value;
            var kind = method == "Heartbeat" ? "heartbeat"
                : component == "controller" || method.StartsWith("Node", StringComparison.Ordinal) || IdentityMethods.Contains(method) ? "csi"
                : "agent";
            yield return new Call(DateTimeOffset.Parse(m.Groups["at"].Value, CultureInfo.InvariantCulture), component, method, m.Groups["code"].Value,
                double.Parse(m.Groups["ms"].Value, CultureInfo.InvariantCulture), kind);
        }
    }

    /// <summary>Every call logged in the *.log files of <paramref name="logDir"/>.</summary>
    public static IReadOnlyList<Call> Read(string logDir) =>
        [.. Directory.EnumerateFiles(logDir, "*.log").SelectMany(f => Parse(File.ReadLines(f)))];

    /// <summary>Lines appended to each log since <paramref name="offsets"/> (file length by path), and the new offsets.</summary>
    public static (IReadOnlyList<Call> Calls, Dictionary<string, long> Offsets) ReadSince(string logDir, IReadOnlyDictionary<string, long> offsets)
    {
        var calls = new List<Call>();
        var next = new Dictionary<string, long>();
        foreach (var file in Directory.EnumerateFiles(logDir, "*.log"))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            stream.Seek(offsets.GetValueOrDefault(file), SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd();
            // A line still being written stays for the next read.
            var complete = text.LastIndexOf('\n') + 1;
            calls.AddRange(Parse(text[..complete].Split('\n')));
            next[file] = offsets.GetValueOrDefault(file) + System.Text.Encoding.UTF8.GetByteCount(text[..complete]);
        }
        return (calls, next);
    }
}
