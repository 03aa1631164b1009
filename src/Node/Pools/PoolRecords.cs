using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Storage;

namespace SolarCsi.Node.Pools;

/// <summary>
/// A pool's volume and snapshot records, one JSON file each, written atomically. Every pool keeps its records
/// here; the medium (an image file, an LV, a disk, a namespace) is the pool's own business.
/// </summary>
public sealed class PoolRecords
{
    private readonly string _volumes, _snapshots;

    public PoolRecords(string root)
    {
        _volumes = Path.Combine(root, "volumes");
        _snapshots = Path.Combine(root, "snapshots");
        Directory.CreateDirectory(_volumes);
        Directory.CreateDirectory(_snapshots);
    }

    public string VolumesDir => _volumes;
    public string SnapshotsDir => _snapshots;

    /// <summary>The name part of a volume or snapshot id: what media-side objects are named after.</summary>
    public static string NameOf(string id) => StorageId.TryParse(id, out var parsed) ? parsed.Name : throw CsiErrors.NotFound($"malformed id {id}");

    public string VolumePathOf(string volumeId) => Path.Combine(_volumes, NameOf(volumeId) + ".json");
    public string SnapshotPathOf(string snapshotId) => Path.Combine(_snapshots, NameOf(snapshotId) + ".json");

    public VolumeRecord? GetVolume(string volumeId) => Read(VolumePathOf(volumeId), PoolJson.Default.VolumeRecord);
    public SnapshotRecord? GetSnapshot(string snapshotId) => Read(SnapshotPathOf(snapshotId), PoolJson.Default.SnapshotRecord);

    public IReadOnlyList<VolumeRecord> ListVolumes() =>
        Directory.EnumerateFiles(_volumes, "v*.json").Select(p => Read(p, PoolJson.Default.VolumeRecord)).OfType<VolumeRecord>()
            .OrderBy(v => v.VolumeId, StringComparer.Ordinal).ToArray();

    public IReadOnlyList<SnapshotRecord> ListSnapshots() =>
        Directory.EnumerateFiles(_snapshots, "s*.json").Select(p => Read(p, PoolJson.Default.SnapshotRecord)).OfType<SnapshotRecord>()
            .OrderBy(s => s.SnapshotId, StringComparer.Ordinal).ToArray();

    public Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct) =>
        AtomicFile.WriteAsync(VolumePathOf(record.VolumeId), JsonSerializer.SerializeToUtf8Bytes(record, PoolJson.Default.VolumeRecord), ct);

    public Task SaveSnapshotAsync(SnapshotRecord record, CancellationToken ct) =>
        AtomicFile.WriteAsync(SnapshotPathOf(record.SnapshotId), JsonSerializer.SerializeToUtf8Bytes(record, PoolJson.Default.SnapshotRecord), ct);

    public void DeleteVolume(string volumeId) => AtomicFile.Delete(VolumePathOf(volumeId));
    public void DeleteSnapshot(string snapshotId) => AtomicFile.Delete(SnapshotPathOf(snapshotId));

    private static T? Read<T>(string path, JsonTypeInfo<T> type) where T : class
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllBytes(path), type) : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }
}
