using SolarCsi.Agent.V1;

namespace SolarCsi.Node.Pools;

/// <summary>
/// A place volumes are carved from on this node (file, nbd, tmpfs, LVM, whole disk, pmem). Pools own
/// persistence of their volumes' records; the agent service only routes to them.
/// </summary>
public interface IMediaPool
{
    string Name { get; }
    string Media { get; }
    PoolInfo Describe();

    /// <summary>Host programs without which the pool cannot create or serve a volume; while one is missing the pool is
    /// announced as unavailable (no capacity, with the reason) instead of failing later.</summary>
    IReadOnlyList<string> RequiredTools { get; }

    /// <summary>Names of volumes whose record was found unreadable and moved aside; their medium is kept untouched.</summary>
    IReadOnlyList<string> UnreadableVolumeNames();

    /// <summary>Whether this volume's record was moved aside as unreadable (nothing may be created over it or delete it).</summary>
    bool IsUnreadable(string volumeId);

    /// <summary>
    /// Creates the volume or returns the existing one. <paramref name="limitBytes"/> (0 = none) bounds pools that
    /// round a request up; the record holds the size really provided.
    /// </summary>
    Task<VolumeRecord> CreateVolumeAsync(string volumeId, string name, long capacityBytes, long limitBytes, Dictionary<string, string> parameters,
        ContentSource? source, CancellationToken ct);
    Task DeleteVolumeAsync(string volumeId, CancellationToken ct);
    VolumeRecord? GetVolume(string volumeId);
    IReadOnlyList<VolumeRecord> ListVolumes();
    Task<VolumeRecord> ExpandVolumeAsync(string volumeId, long capacityBytes, CancellationToken ct);
    Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct);

    Task<SnapshotRecord> CreateSnapshotAsync(string snapshotId, string name, string sourceVolumeId, CancellationToken ct);
    Task DeleteSnapshotAsync(string snapshotId, CancellationToken ct);
    IReadOnlyList<SnapshotRecord> ListSnapshots();

    /// <summary>The file, device or directory the node attaches for this volume.</summary>
    string BackingPathOf(string volumeId);

    /// <summary>
    /// Makes the volume's backing usable on this node before a stage (activate an LV, re-create a tmpfs lost to a
    /// reboot, check a disk is still the one we handed out) and returns its path. Refuses rather than guesses.
    /// </summary>
    Task<string> PrepareBackingAsync(string volumeId, CancellationToken ct);

    /// <summary>What is wrong with the volume's backing as this node sees it (for volume_condition); null when nothing is.</summary>
    string? BackingProblem(VolumeRecord record) =>
        Path.Exists(BackingPathOf(record.VolumeId)) ? null : $"the volume's backing ({BackingPathOf(record.VolumeId)}) is missing";

    /// <summary>Whether the node must grow the device or filesystem after <see cref="ExpandVolumeAsync"/>.</summary>
    bool NodeExpansionRequired { get; }
}
