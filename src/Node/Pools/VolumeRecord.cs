namespace SolarCsi.Node.Pools;

/// <summary>
/// What a pool persists about a volume beside its data; the agent's source of truth. <c>Backing</c> holds what a
/// media needs to find the volume again (a disk's path and identity, a namespace's device).
/// </summary>
public sealed record VolumeRecord(
    string VolumeId,
    string Name,
    long CapacityBytes,
    Dictionary<string, string> Parameters,
    string? SourceSnapshotId,
    string? SourceVolumeId,
    DateTimeOffset Created,
    List<PublicationRecord> Publications,
    Dictionary<string, string>? Backing = null);

public sealed record PublicationRecord(string NodeId, bool ReadOnly, int AccessMode, bool Block);

public sealed record SnapshotRecord(string SnapshotId, string Name, string SourceVolumeId, long SizeBytes, DateTimeOffset Created);
