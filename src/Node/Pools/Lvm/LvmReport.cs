using System.Globalization;
using System.Text.Json;
using static SolarCsi.Core.Json.ToolJson;

namespace SolarCsi.Node.Pools.Lvm;

/// <summary>One row of <c>lvs</c>. <see cref="Attributes"/> is lv_attr: [0] type, [4] state, [5] open.</summary>
public sealed record LogicalVolume(string Name, string VolumeGroup, long SizeBytes, IReadOnlyList<string> Tags, string PoolLv, string Origin,
    string Attributes, string Path, double? DataPercent)
{
    public bool IsThinPool => Attributes.StartsWith('t');
    /// <summary>A thin volume, thin snapshots included.</summary>
    public bool IsThin => Attributes.StartsWith('V');
    public bool IsOpen => Attributes.Length > 5 && Attributes[5] == 'o';
    public bool HasTag(string tag) => Tags.Contains(tag, StringComparer.Ordinal);
}

/// <summary>One row of <c>vgs</c>.</summary>
public sealed record VolumeGroupReport(string Name, long SizeBytes, long FreeBytes);

/// <summary>
/// Parses <c>lvs</c>/<c>vgs --reportformat json --units b --nosuffix</c>: <c>{"report":[{"lv":[...]}]}</c> with every value a
/// string. Newer lvm (or <c>log/report_command_log=1</c>) appends a <c>"log"</c> section; lvm 2.03.16 prints that section with a
/// trailing comma, so trailing commas are allowed.
/// </summary>
public static class LvmReport
{
    private static readonly JsonDocumentOptions Options = new() { AllowTrailingCommas = true };

    public static IReadOnlyList<LogicalVolume> ParseLogicalVolumes(string json) =>
        Rows(json, "lv").Select(r => new LogicalVolume(Text(r, "lv_name"), Text(r, "vg_name"), Bytes(r, "lv_size"), Tags(Text(r, "lv_tags")),
            Text(r, "pool_lv"), Text(r, "origin"), Text(r, "lv_attr"), Text(r, "lv_path"), Percent(Text(r, "data_percent")))).ToArray();

    public static IReadOnlyList<VolumeGroupReport> ParseVolumeGroups(string json) =>
        Rows(json, "vg").Select(r => new VolumeGroupReport(Text(r, "vg_name"), Bytes(r, "vg_size"), Bytes(r, "vg_free"))).ToArray();

    private static List<JsonElement> Rows(string json, string section)
    {
        if (string.IsNullOrWhiteSpace(json)) return [];
        using var doc = JsonDocument.Parse(json, Options);
        if (!doc.RootElement.TryGetProperty("report", out var reports) || reports.ValueKind != JsonValueKind.Array) return [];
        var rows = new List<JsonElement>();
        foreach (var report in reports.EnumerateArray())
            if (report.TryGetProperty(section, out var list) && list.ValueKind == JsonValueKind.Array)
                rows.AddRange(list.EnumerateArray().Select(e => e.Clone()));
        return rows;
    }


    private static long Bytes(JsonElement e, string name)
    {
        var text = Text(e, name);
        if (text.Length == 0) return 0;
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes)
            ? bytes
            : throw new FormatException($"lvm reported {name} '{text}', not a byte count (is --units b --nosuffix set?)");
    }

    private static IReadOnlyList<string> Tags(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static double? Percent(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var p) ? p : null;
}
