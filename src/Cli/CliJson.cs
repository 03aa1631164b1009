using System.Text.Json.Serialization;
using SolarCsi.Node.Inspection;

namespace SolarCsi.Cli;

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(VolumeRow[]))]
[JsonSerializable(typeof(NodeReport))]
[JsonSerializable(typeof(Finding[]))]
[JsonSerializable(typeof(string[]))]
internal sealed partial class CliJson : JsonSerializerContext;
