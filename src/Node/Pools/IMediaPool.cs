using SolarCsi.Agent.V1;

namespace SolarCsi.Node.Pools;

/// <summary>
/// A place volumes are carved from on this node (file, and later tmpfs, LVM, whole disk, pmem). Pools own
/// persistence of their volumes' records; the agent service only routes to them.
/// </summary>
public interface IMediaPool
{
    string Name { get; }
    string Media { get; }
    PoolInfo Describe();

    Task<VolumeRecord> CreateVolumeAsync(string volumeId, string name, long capacityBytes, Dictionary<string, string> parameters,
        ContentSource? source, CancellationToken ct);
    Task DeleteVolumeAsync(string volumeId, CancellationToken ct);
    VolumeRecord? GetVolume(string volumeId);
    IReadOnlyList<VolumeRecord> ListVolumes();
    Task<VolumeRecord> ExpandVolumeAsync(string volumeId, long capacityBytes, CancellationToken ct);
    Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct);

    Task<SnapshotRecord> CreateSnapshotAsync(string snapshotId, string name, string sourceVolumeId, CancellationToken ct);
    Task DeleteSnapshotAsync(string snapshotId, CancellationToken ct);
    IReadOnlyList<SnapshotRecord> ListSnapshots();

    /// <summary>The file or device the node attaches for this volume.</summary>
    string BackingPathOf(string volumeId);
}
