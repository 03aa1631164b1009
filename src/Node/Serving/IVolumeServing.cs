using SolarCsi.Agent.V1;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Serving;

/// <summary>
/// How a storage host hands a medium's volumes to the nodes that use them — what the agent asks instead of comparing
/// media names. A local medium is used on its own node only and serves nothing (<see cref="LocalServing"/>); a remote
/// one runs an export per volume, admits and fences nodes at it and enforces live limits there (<see cref="NbdServing"/>).
/// </summary>
public interface IVolumeServing
{
    /// <summary>Refuses live limits this host cannot enforce for <paramref name="volumeId"/> (null: a volume still to be created).</summary>
    void RequireEnforceable(string? volumeId, RateLimits limits);

    /// <summary>Lets the publication's node use the volume (of <paramref name="pool"/>); returns what its NodeStage needs (publish_context).</summary>
    Task<IReadOnlyDictionary<string, string>> AdmitAsync(IMediaPool pool, VolumeRecord record, PublishVolumeRequest request, bool readOnly, CancellationToken ct);

    /// <summary>Whether anything serves the volume now (an export with a readable record).</summary>
    bool Serves(string volumeId);

    /// <summary>Stops serving <paramref name="nodeId"/> (empty: every node); a writer's live connections are cut first.</summary>
    Task RevokeAsync(string volumeId, string nodeId, CancellationToken ct);

    /// <summary>Whatever serves the volume goes (it is being deleted, or its record is gone).</summary>
    Task RemoveAsync(string volumeId, CancellationToken ct);

    /// <summary>Applies the volume's live limits where it is served.</summary>
    Task ApplyLimitsAsync(string volumeId, RateLimits limits, CancellationToken ct);

    /// <summary>What the storage host can see is wrong with serving a published volume; null when nothing is.</summary>
    string? ProblemOf(VolumeRecord record);

    /// <summary>
    /// Why a snapshot taken now, without a freeze of the writer, would be torn; null when it would not. A local
    /// medium's snapshot quiesces its own node's writers; a remote volume's writer is on another node.
    /// </summary>
    string? WhyUnfrozenSnapshotTears(VolumeRecord record);
}
