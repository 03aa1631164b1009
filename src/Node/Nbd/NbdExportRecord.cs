using System.Text.Json.Serialization;

namespace SolarCsi.Node.Nbd;

/// <summary>An export as the registry remembers it; its keys live only in the export's 0600 PSK file.</summary>
/// <param name="Peers">per admitted node, the addresses its connections may come from (the export's peers file is their
/// union); null in a record written before addresses were checked, whose export then checks none until it is admitted again.</param>
public sealed record NbdExportRecord(string VolumeId, string Image, int Port, bool ReadOnly, List<string> Identities,
    Dictionary<string, List<string>>? Peers = null);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(NbdExportRecord))]
internal sealed partial class NbdJson : JsonSerializerContext;
