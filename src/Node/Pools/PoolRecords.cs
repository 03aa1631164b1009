using System.Text.Json;
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

    /// <summary>
    /// Records as last read, by path, with the stamp of the file they were read from. A listing is asked for on every
    /// publish (the attach limit counts publications) and capacity report; reading and parsing every record each time
    /// made those O(volumes) in I/O and JSON (at 256 volumes, ControllerPublish's p95 grew with the count:
    /// bench-nbd-scale). One stat per record tells whether the cached record is still the file's: records are written
    /// by rename, so a changed record is a new inode. Records are immutable once read (callers make new ones with
    /// <c>with</c>), so one instance is shared.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (SolarCsi.Node.Devices.FileIdentity.Stamp Stamp, VolumeRecord Record)> _volumeCache = new(StringComparer.Ordinal);

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

    public VolumeRecord? GetVolume(string volumeId) => ReadVolume(VolumePathOf(volumeId));
    public SnapshotRecord? GetSnapshot(string snapshotId) => ReadSnapshot(SnapshotPathOf(snapshotId));

    /// <summary>
    /// Whether the volume's record was found unreadable and moved aside: its medium may still hold the data, so
    /// nothing may be created over it or delete it until an operator repairs or removes it (`solar cleanup`).
    /// </summary>
    public bool IsUnreadable(string volumeId) => StateFiles.IsUnreadable(VolumePathOf(volumeId));

    /// <summary>The names (id name segments) of volumes whose record was moved aside as unreadable.</summary>
    public IReadOnlyList<string> UnreadableVolumeNames() =>
        Directory.EnumerateFiles(_volumes, "v*.json" + StateFiles.UnreadableSuffix)
            .Where(p => !File.Exists(StateFiles.OriginalOf(p)))
            .Select(p => Path.GetFileName(p).Split('.')[0]).Distinct().Order(StringComparer.Ordinal).ToArray();

    public IReadOnlyList<VolumeRecord> ListVolumes() =>
        Directory.EnumerateFiles(_volumes, "v*.json").Select(ReadVolume).OfType<VolumeRecord>()
            .OrderBy(v => v.VolumeId, StringComparer.Ordinal).ToArray();

    public IReadOnlyList<SnapshotRecord> ListSnapshots() =>
        Directory.EnumerateFiles(_snapshots, "s*.json").Select(ReadSnapshot).OfType<SnapshotRecord>()
            .OrderBy(s => s.SnapshotId, StringComparer.Ordinal).ToArray();

    public Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct) =>
        AtomicFile.WriteAsync(VolumePathOf(record.VolumeId), JsonSerializer.SerializeToUtf8Bytes(record, PoolJson.Default.VolumeRecord), ct);

    public Task SaveSnapshotAsync(SnapshotRecord record, CancellationToken ct) =>
        AtomicFile.WriteAsync(SnapshotPathOf(record.SnapshotId), JsonSerializer.SerializeToUtf8Bytes(record, PoolJson.Default.SnapshotRecord), ct);

    public void DeleteVolume(string volumeId) => AtomicFile.Delete(VolumePathOf(volumeId));
    public void DeleteSnapshot(string snapshotId) => AtomicFile.Delete(SnapshotPathOf(snapshotId));

    private VolumeRecord? ReadVolume(string path)
    {
        var stamp = SolarCsi.Node.Devices.FileIdentity.TryStampOf(path);
        if (stamp is not null && _volumeCache.TryGetValue(path, out var cached) && cached.Stamp == stamp) return cached.Record;
        var record = ReadVolumeFile(path);
        if (record is not null && stamp is not null) _volumeCache[path] = (stamp, record);
        else _volumeCache.TryRemove(path, out _);
        return record;
    }

    // A record that names no volume (or another file's volume) is as unreadable as a truncated one.
    private static VolumeRecord? ReadVolumeFile(string path) =>
        StateFiles.Read(path, b => JsonSerializer.Deserialize(b, PoolJson.Default.VolumeRecord),
            r => r.VolumeId is { Length: > 0 } && StorageId.TryParse(r.VolumeId, out var id) && id.Name == NameOfFile(path) && r.Parameters is not null && r.Publications is not null);

    private static SnapshotRecord? ReadSnapshot(string path) =>
        StateFiles.Read(path, b => JsonSerializer.Deserialize(b, PoolJson.Default.SnapshotRecord),
            r => r.SnapshotId is { Length: > 0 } && StorageId.TryParse(r.SnapshotId, out var id) && id.Name == NameOfFile(path) && r.SourceVolumeId is not null);

    private static string NameOfFile(string path) => Path.GetFileNameWithoutExtension(path);
}
