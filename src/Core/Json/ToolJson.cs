using System.Text.Json;

namespace SolarCsi.Core.Json;

/// <summary>
/// Reading the JSON that system tools print (losetup, lvs/vgs, ndctl): they disagree, and change between
/// versions, on whether numbers are strings or numbers and booleans are true or "1".
/// </summary>
public static class ToolJson
{
    /// <summary>The field as text whatever its JSON type; "" when absent or null.</summary>
    public static string Text(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString() ?? "",
            JsonValueKind.Number => v.GetRawText(),
            _ => "",
        } : "";

    public static bool Flag(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && (v.ValueKind == JsonValueKind.True || (v.ValueKind == JsonValueKind.String && v.GetString() == "1") ||
                                               (v.ValueKind == JsonValueKind.Number && v.GetInt32() == 1));
}
