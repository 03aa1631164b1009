using SolarCsi.Agent.V1;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Serving;

/// <summary>A local medium: used where it lives, so publishing records the node and serves nothing.</summary>
public sealed class LocalServing : IVolumeServing
{
    public static readonly LocalServing Instance = new();

    public void RequireEnforceable(string? volumeId, RateLimits limits) { }

    public Task<IReadOnlyDictionary<string, string>> AdmitAsync(IMediaPool pool, VolumeRecord record, PublishVolumeRequest request, bool readOnly,
        CancellationToken ct) => Task.FromResult<IReadOnlyDictionary<string, string>>(new Dictionary<string, string>());

    public bool Serves(string volumeId) => false;

    public Task RevokeAsync(string volumeId, string nodeId, CancellationToken ct) => Task.CompletedTask;

    public Task RemoveAsync(string volumeId, CancellationToken ct) => Task.CompletedTask;

    public Task ApplyLimitsAsync(string volumeId, RateLimits limits, CancellationToken ct) => Task.CompletedTask;

    public string? ProblemOf(VolumeRecord record) => null;

    public string? WhyUnfrozenSnapshotTears(VolumeRecord record) => null;
}
