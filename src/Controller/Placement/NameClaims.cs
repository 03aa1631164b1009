using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Storage;

namespace SolarCsi.Controller.Placement;

/// <summary>Which volume a CSI name was given to: written before the agent is asked to create it.</summary>
public sealed record NameClaim(string Name, string VolumeId, DateTimeOffset Claimed);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(NameClaim))]
internal sealed partial class NameClaimJson : JsonSerializerContext;

/// <summary>
/// One name, one volume. CreateVolume's idempotency otherwise rests on asking the agents alive now, so a retry that
/// arrives while the node that got the first attempt is silent (or after a controller restart, before it announced
/// itself) would place a second volume elsewhere. A claim — name → volume id, made durable before the agent is
/// asked — makes that retry wait for the node instead. It goes when the volume is deleted. Kept as one file per
/// name under the controller's state directory (atomically written), or in memory only when it has none.
/// </summary>
public sealed class NameClaims
{
    private readonly string? _dir;
    // Keyed by the name's hash — the name part of every volume id made for it ("v" + hash) and the claim file's name —
    // so a delete finds its claim from the volume id alone.
    private readonly ConcurrentDictionary<string, NameClaim> _claims = new(StringComparer.Ordinal);

    public NameClaims(string? stateDir, ILogger<NameClaims> logger)
    {
        if (stateDir is null)
        {
            logger.LogWarning("no --state-dir: volume name claims are kept in memory only; a controller restart while a node is silent " +
                              "can place a second volume for a retried name (the orphan sweep then reports it)");
            return;
        }
        _dir = Path.Combine(stateDir, "claims");
        Directory.CreateDirectory(_dir);
        foreach (var file in Directory.EnumerateFiles(_dir, "*.json"))
            if (StateFiles.Read(file, bytes => JsonSerializer.Deserialize(bytes, NameClaimJson.Default.NameClaim), IsWellFormed) is { } claim)
                _claims[NameHash.Of(claim.Name)] = claim;
        logger.LogInformation("{Count} volume name claim(s) in {Dir}", _claims.Count, _dir);
    }

    public int Count => _claims.Count;

    public NameClaim? Get(string name) => _claims.TryGetValue(NameHash.Of(name), out var claim) && claim.Name == name ? claim : null;

    public async Task SetAsync(string name, StorageId volume, CancellationToken ct)
    {
        var claim = new NameClaim(name, volume.ToString(), DateTimeOffset.UtcNow);
        var hash = NameHash.Of(name);
        if (_dir is not null)
            await AtomicFile.WriteAsync(FileOf(hash), JsonSerializer.SerializeToUtf8Bytes(claim, NameClaimJson.Default.NameClaim), ct);
        _claims[hash] = claim;
    }

    /// <summary>Drops the claim of the name this volume was created for, if it still names this volume.</summary>
    public void Release(StorageId volume)
    {
        var hash = volume.Name[1..];
        if (!_claims.TryGetValue(hash, out var claim) || claim.VolumeId != volume.ToString()) return;
        if (_dir is not null) AtomicFile.Delete(FileOf(hash));
        _claims.TryRemove(new KeyValuePair<string, NameClaim>(hash, claim));
    }

    private string FileOf(string hash) => Path.Combine(_dir!, hash + ".json");

    private static bool IsWellFormed(NameClaim c) =>
        c.Name is { Length: > 0 } && StorageId.TryParse(c.VolumeId, out var id) && id.IsVolume && id.Name == "v" + NameHash.Of(c.Name);
}
