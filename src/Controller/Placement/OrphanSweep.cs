using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Controller.Agents;
using SolarCsi.Core.Ids;

namespace SolarCsi.Controller.Placement;

/// <summary>
/// Finds volumes no CO can know: a second volume of a name whose claim names another (a storage host that comes back
/// holding the volume of a create that was retried elsewhere while it was silent, or claims lost with the
/// controller's state), or several volumes of one name with no claim at all. They are reported — a warning in the
/// log, <c>solar_orphan_volumes</c>, and an abnormal volume_condition in ListVolumes — and never deleted: only
/// whoever holds the CO's view can tell which one a PV names. Volumes that exist without a claim (created before
/// claims were kept) get one, so the claims describe every volume after one sweep.
/// Runs after the warm-up, whenever a node (re)announces itself, and every <see cref="Period"/>.
/// </summary>
public sealed class OrphanSweep(AgentDirectory directory, Inventory inventory, NameClaims claims, ILogger<OrphanSweep> logger) : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);

    private IReadOnlyDictionary<string, string> _orphans = new Dictionary<string, string>();

    /// <summary>Orphan volume ids with why, as of the last sweep.</summary>
    public IReadOnlyDictionary<string, string> Orphans => Volatile.Read(ref _orphans);

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var known = new HashSet<string>(StringComparer.Ordinal);
        var last = DateTimeOffset.MinValue;
        while (!ct.IsCancellationRequested)
        {
            try { await Task.Delay(Tick, ct); }
            catch (OperationCanceledException) { return; }
            if (directory.WarmingUp) continue;
            var live = directory.Live().Select(a => a.NodeId).ToHashSet(StringComparer.Ordinal);
            var newcomer = !live.IsSubsetOf(known);
            known = live;
            if (!newcomer && DateTimeOffset.UtcNow - last < Period) continue;
            last = DateTimeOffset.UtcNow;
            try { await SweepAsync(ct); }
            catch (RpcException e) { logger.LogWarning("orphan sweep: an agent did not answer ({Status}); next sweep in {Period}", e.StatusCode, Period); }
        }
    }

    public async Task SweepAsync(CancellationToken ct)
    {
        var volumes = await inventory.AllVolumesAsync(ct);
        var found = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var named in volumes.GroupBy(v => v.Name, StringComparer.Ordinal))
        {
            var claim = claims.Get(named.Key);
            if (claim is not null)
            {
                foreach (var v in named.Where(v => v.VolumeId != claim.VolumeId))
                    found[v.VolumeId] = $"orphan: the name '{named.Key}' belongs to {claim.VolumeId}; this copy was left by a create retried while its " +
                                        "node was silent (or claims lost with the controller's state). Check that no PV names it, then delete it";
            }
            else if (named.Count() == 1)
            {
                await claims.SetAsync(named.Key, StorageId.ParseVolume(named.Single().VolumeId), ct);
            }
            else
            {
                var ids = string.Join(", ", named.Select(v => v.VolumeId));
                foreach (var v in named)
                    found[v.VolumeId] = $"orphan suspect: {named.Count()} volumes are named '{named.Key}' ({ids}) and no claim says which one the CO " +
                                        "holds; keep the one a PV names, delete the others";
            }
        }
        foreach (var (id, why) in found.Where(f => !Orphans.ContainsKey(f.Key)))
            logger.LogWarning("orphan volume {VolumeId}: {Why}", id, why);
        Volatile.Write(ref _orphans, found);
    }
}
