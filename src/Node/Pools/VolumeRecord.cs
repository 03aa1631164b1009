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
    Dictionary<string, string>? Backing = null)
{
    /// <summary>A new volume's record, created now, unpublished, naming the snapshot or volume it was made from.</summary>
    public static VolumeRecord New(string volumeId, string name, long capacityBytes, Dictionary<string, string> parameters,
        SolarCsi.Agent.V1.ContentSource? source) =>
        new(volumeId, name, capacityBytes, parameters, source?.SnapshotId is { Length: > 0 } s ? s : null,
            source?.VolumeId is { Length: > 0 } v ? v : null, DateTimeOffset.UtcNow, []);
}

public sealed record PublicationRecord(string NodeId, bool ReadOnly, int AccessMode, bool Block);

public sealed record SnapshotRecord(string SnapshotId, string Name, string SourceVolumeId, long SizeBytes, DateTimeOffset Created);
