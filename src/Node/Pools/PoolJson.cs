using System.Text.Json.Serialization;

namespace SolarCsi.Node.Pools;

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(VolumeRecord))]
[JsonSerializable(typeof(SnapshotRecord))]
internal sealed partial class PoolJson : JsonSerializerContext;
