using System.Text.Json.Serialization;

namespace SolarCsi.Node.Nbd;

/// <summary>An export as the registry remembers it; its keys live only in the export's 0600 PSK file.</summary>
public sealed record NbdExportRecord(string VolumeId, string Image, int Port, bool ReadOnly, List<string> Identities);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(NbdExportRecord))]
internal sealed partial class NbdJson : JsonSerializerContext;
