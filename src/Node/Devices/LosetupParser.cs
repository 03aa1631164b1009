using System.Text.Json;
using static SolarCsi.Core.Json.ToolJson;

namespace SolarCsi.Node.Devices;

/// <summary>Parses <c>losetup --list --json</c>. util-linux prints numbers either as JSON numbers or strings.</summary>
public static class LosetupParser
{
    public static readonly string[] Columns = ["NAME", "BACK-FILE", "BACK-INO", "BACK-MAJ:MIN", "RO", "DIO"];

    public static IReadOnlyList<LoopDevice> Parse(string json)
    {
        if (string.IsNullOrWhiteSpace(json)) return [];
        using var doc = JsonDocument.Parse(json);
        if (!doc.RootElement.TryGetProperty("loopdevices", out var list)) return [];
        var devices = new List<LoopDevice>();
        foreach (var d in list.EnumerateArray())
        {
            var back = Text(d, "back-file");
            // A backing file deleted while attached is reported with this suffix.
            const string deleted = " (deleted)";
            if (back.EndsWith(deleted, StringComparison.Ordinal)) back = back[..^deleted.Length];
            devices.Add(new LoopDevice(Text(d, "name"), back, ulong.TryParse(Text(d, "back-ino"), out var ino) ? ino : 0,
                Text(d, "back-maj:min").Trim(), Flag(d, "ro"), Flag(d, "dio")));
        }
        return devices;
    }


}
