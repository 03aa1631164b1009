using Microsoft.Extensions.Logging;
using SolarCsi.Core.Devices;
using SolarCsi.Core.Mounts;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Staging;

/// <summary>
/// Start-up pass that lines the journal up with what the kernel reports: finishes interrupted unstages,
/// demotes entries whose mount or device vanished (a reboot, a crash) so NodePublish refuses them until they
/// are staged again, and detaches loop devices over our images that no journal entry explains.
/// </summary>
public sealed class NodeReconciler(
    NodeJournal journal, NodeVolumes volumes, PoolSet pools, IMounter mounter, LoopDevices loops, AttacherSet attachers,
    string nbdClientRoot, ILogger<NodeReconciler> logger)
{
    public async Task RunAsync(CancellationToken ct)
    {
        foreach (var entry in journal.All())
        {
            try
            {
                using var slot = volumes.InFlight.Acquire(entry.VolumeId, "reconcile");
                await ReconcileAsync(entry, ct);
            }
            catch (Exception e)
            {
                logger.LogError(e, "reconcile {VolumeId} failed; the next stage or unstage will retry", entry.VolumeId);
            }
        }
        await DetachUnexplainedAsync(ct);
        await DetachUnexplainedNbdAsync(ct);
    }

    /// <summary>NBD client directories (FUSE mount, proxy, key) that no journal entry explains.</summary>
    private async Task DetachUnexplainedNbdAsync(CancellationToken ct)
    {
        if (!Directory.Exists(nbdClientRoot)) return;
        var explained = journal.All().Select(e => e.Source).ToHashSet(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories(nbdClientRoot).Where(d => !explained.Contains(d)))
        {
            var volumeId = Path.GetFileName(dir);
            using var slot = volumes.InFlight.Acquire(volumeId, "reconcile");
            var device = await attachers.Nbd.FindAttachedAsync(dir, ct);
            if (device is not null && (await mounter.ListAsync(ct)).Any(m => m.Shows(device)))
            {
                logger.LogWarning("{Device} of {VolumeId} has no journal entry but is mounted; leaving it", device, volumeId);
                continue;
            }
            logger.LogWarning("removing residual NBD attachment of {VolumeId} ({Device})", volumeId, device ?? "no device");
            await attachers.Nbd.DetachAsync(device ?? "", dir, ct);
            Directory.Delete(dir, recursive: true);
        }
    }

    private async Task ReconcileAsync(JournalEntry entry, CancellationToken ct)
    {
        if (entry.Phase == StagePhase.Unstaging)
        {
            logger.LogWarning("finishing interrupted unstage of {VolumeId}", entry.VolumeId);
            await volumes.UnstageAsync(entry.VolumeId, entry.StagingPath, ct);
            return;
        }
        if (entry.Phase != StagePhase.Staged) return;
        var device = await attachers.ForKind(entry.AttachKind).FindAttachedAsync(entry.Source, ct);
        var mounts = await mounter.ListAsync(ct);
        var healthy = device is not null && device == entry.Device &&
                      (entry.Block || mounts.Any(m => m.MountPoint == entry.StagingPath && m.Source == device));
        if (healthy) return;
        logger.LogWarning("journal says {VolumeId} is staged but the kernel disagrees (device {Device}); marking it for re-stage",
            entry.VolumeId, device ?? "none");
        await journal.SaveAsync(entry with { Phase = StagePhase.Staging, Device = device }, ct);
    }

    private async Task DetachUnexplainedAsync(CancellationToken ct)
    {
        var explained = journal.All().Select(e => e.Source).ToHashSet(StringComparer.Ordinal);
        var ours = pools.All.SelectMany(p => p.ListVolumes().Select(v => p.BackingPathOf(v.VolumeId))).ToHashSet(StringComparer.Ordinal);
        var mounts = await mounter.ListAsync(ct);
        foreach (var loop in await loops.ListAsync(ct))
        {
            if (!ours.Contains(loop.BackingFile) || explained.Contains(loop.BackingFile)) continue;
            if (mounts.Any(m => m.Shows(loop.Name)))
            {
                logger.LogWarning("{Device} over {File} has no journal entry but is mounted; leaving it", loop.Name, loop.BackingFile);
                continue;
            }
            logger.LogWarning("detaching residual {Device} over {File}", loop.Name, loop.BackingFile);
            await loops.DetachAsync(loop.Name, ct);
        }
    }
}
