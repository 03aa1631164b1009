using System.Globalization;
using System.Text.Json;
using static SolarCsi.Core.Json.ToolJson;

namespace SolarCsi.Node.Pools.Pmem;

/// <summary>A namespace as <c>ndctl list --namespaces</c> prints it. <see cref="SizeBytes"/> is the usable size (after fsdax metadata).</summary>
public sealed record PmemNamespace(string Dev, string Mode, long SizeBytes, string Uuid, string BlockDev, string Name, long Align, bool Enabled);

/// <summary>A region as <c>ndctl list --regions</c> prints it. <see cref="Align"/> is absent before ndctl v71 / kernel 5.10.</summary>
public sealed record PmemRegion(string Dev, long SizeBytes, long AvailableBytes, long? MaxAvailableExtentBytes, string Type, long? Align)
{
    public long LargestFreeBytes => MaxAvailableExtentBytes ?? AvailableBytes;
}

/// <summary>
/// Parses ndctl's JSON. ndctl prints an array; a single result may come as a bare object (always in older versions,
/// with --human in newer ones); no result prints nothing at all. Sizes are integers unless --human was given.
/// </summary>
public static class NdctlParser
{
    public static IReadOnlyList<PmemNamespace> ParseNamespaces(string json) =>
        Items(json, "namespaces").Select(n => new PmemNamespace(Text(n, "dev"), Text(n, "mode"), Bytes(n, "size") ?? 0, Text(n, "uuid"),
            Text(n, "blockdev"), Text(n, "name"), Bytes(n, "align") ?? 0, Text(n, "state") != "disabled")).ToArray();

    public static IReadOnlyList<PmemRegion> ParseRegions(string json) =>
        Items(json, "regions").Select(r => new PmemRegion(Text(r, "dev"), Bytes(r, "size") ?? 0, Bytes(r, "available_size") ?? 0,
            Bytes(r, "max_available_extent"), Text(r, "type"), Bytes(r, "align"))).ToArray();

    private static List<JsonElement> Items(string json, string container)
    {
        if (string.IsNullOrWhiteSpace(json)) return [];
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        IEnumerable<JsonElement> items = root.ValueKind switch
        {
            JsonValueKind.Array => root.EnumerateArray(),
            // Listing several kinds at once wraps each in a container object: {"regions":[...],"namespaces":[...]}.
            JsonValueKind.Object when root.TryGetProperty(container, out var inner) && inner.ValueKind == JsonValueKind.Array => inner.EnumerateArray(),
            JsonValueKind.Object => [root],
            _ => [],
        };
        return items.Where(e => e.ValueKind == JsonValueKind.Object).Select(e => e.Clone()).ToList();
    }


    private static long? Bytes(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n)) return n;
        if (v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var s)) return s;
        // "--human" sizes ("24.00 MiB (25.17 MB)") are rounded: refuse them rather than guess.
        throw new FormatException($"ndctl reported {name} as {v.GetRawText()}, not a byte count");
    }
}
