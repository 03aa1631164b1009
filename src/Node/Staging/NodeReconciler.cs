using Microsoft.Extensions.Logging;
using SolarCsi.Core.Concurrency;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Staging;

/// <summary>
/// Lines the journal up with what the kernel reports, at start-up and then periodically: finishes interrupted
/// unstages, demotes entries whose mount or device vanished (a reboot, a crash) so NodePublish refuses them until
/// they are staged again, and detaches loop devices and NBD attachments of ours that no journal entry explains.
/// Every action on a volume happens under that volume's in-flight slot; a volume busy with a CSI call is skipped.
/// </summary>
public sealed class NodeReconciler(
    NodeJournal journal, VolumeStaging staging, InFlightTracker inFlight, PoolSet pools, IMounter mounter, LoopDevices loops, AttacherSet attachers,
    VolumeSources sources, ILogger<NodeReconciler> logger)
{
    public async Task RunAsync(CancellationToken ct)
    {
        foreach (var entry in journal.All())
        {
            // Look first without the slot, so a healthy node never makes a CSI call wait or abort.
            try
            {
                if (!await NeedsActionAsync(entry, ct)) continue;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "could not inspect {VolumeId}", entry.VolumeId);
                continue;
            }
            using var slot = TryAcquire(entry.VolumeId);
            if (slot is null) continue;
            try
            {
                // Re-read under the slot: the entry may have changed since the listing.
                if (journal.Get(entry.VolumeId) is { } current) await ReconcileAsync(current, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "reconcile {VolumeId} failed; the next stage, unstage or pass will retry", entry.VolumeId);
            }
        }
        await DetachUnexplainedAsync(ct);
        await DetachUnexplainedRemoteAsync(ct);
    }

    /// <summary>Remote volumes' client directories (NBD's: FUSE mount, proxy, key) that no journal entry explains.</summary>
    private async Task DetachUnexplainedRemoteAsync(CancellationToken ct)
    {
        var explained = journal.All().Select(e => e.Source).ToHashSet(StringComparer.Ordinal);
        foreach (var (volume, dir) in sources.RemoteClients().Where(c => !explained.Contains(c.Directory)))
        {
            var volumeId = volume.ToString();
            using var slot = TryAcquire(volumeId);
            // A set-aside (unreadable) entry may describe a live stage: what it explained is not residue.
            if (slot is null || journal.Get(volumeId) is not null || journal.IsUnreadable(volumeId)) continue;
            var attacher = attachers.ForMedia(volume.Media);
            var device = await attacher.FindAttachedAsync(dir, ct);
            if (device is not null && (await mounter.ListAsync(ct)).IsInUse(device))
            {
                logger.LogWarning("{Device} of {VolumeId} has no journal entry but is mounted; leaving it", device, volumeId);
                continue;
            }
            logger.LogWarning("removing residual NBD attachment of {VolumeId} ({Device})", volumeId, device ?? "no device");
            SolarCsi.Core.Metrics.PluginMetrics.Current.CountReconcilerAction("remove-residual-nbd-attachment");
            await attacher.DetachAsync(device ?? "", dir, ct);
            sources.Forget(volumeId);
        }
    }

    private async Task<bool> NeedsActionAsync(JournalEntry entry, CancellationToken ct) =>
        entry.Phase == StagePhase.Unstaging || (entry.Phase == StagePhase.Staged && !await IsHealthyAsync(entry, ct));

    private async Task<bool> IsHealthyAsync(JournalEntry entry, CancellationToken ct)
    {
        var device = await attachers.ForKind(entry.AttachKind).FindAttachedAsync(entry.Source, ct);
        return device is not null && device == entry.Device &&
               (entry.Block || (await mounter.ListAsync(ct)).Holds(entry.StagingPath, device));
    }

    private async Task ReconcileAsync(JournalEntry entry, CancellationToken ct)
    {
        if (entry.Phase == StagePhase.Unstaging)
        {
            logger.LogWarning("finishing interrupted unstage of {VolumeId}", entry.VolumeId);
            SolarCsi.Core.Metrics.PluginMetrics.Current.CountReconcilerAction("finish-interrupted-unstage");
            await staging.UnstageAsync(entry.VolumeId, entry.StagingPath, ct);
            return;
        }
        if (entry.Phase != StagePhase.Staged || await IsHealthyAsync(entry, ct)) return;
        var device = await attachers.ForKind(entry.AttachKind).FindAttachedAsync(entry.Source, ct);
        logger.LogWarning("journal says {VolumeId} is staged but the kernel disagrees (device {Device}); marking it for re-stage",
            entry.VolumeId, device ?? "none");
        SolarCsi.Core.Metrics.PluginMetrics.Current.CountReconcilerAction("mark-broken-stage");
        // Keep the recorded device: unpublish and unstage still need it to recognise the mounts it left behind.
        await journal.SaveAsync(entry with { Phase = StagePhase.Staging }, ct);
    }

    private async Task DetachUnexplainedAsync(CancellationToken ct)
    {
        var ours = new SolarCsi.Node.Devices.BackingFileIndex<string>(pools.All.SelectMany(p => p.ListVolumes().Select(v => (p.BackingPathOf(v.VolumeId), v.VolumeId))));
        foreach (var loop in await loops.ListAsync(ct))
        {
            if (!ours.TryFind(loop, out var file, out var volumeId)) continue;
            using var slot = TryAcquire(volumeId);
            if (slot is null || journal.Get(volumeId) is not null || journal.IsUnreadable(volumeId)) continue;
            // The listing is a moment old: since then the volume may have been unstaged and its device taken by
            // another volume's stage (here, or by another plugin on this host). Only a device still bound to this
            // volume's file is residue; under the volume's slot nothing can unbind and re-bind it before the detach.
            if (!(await loops.FindByBackingFileAsync(file, ct)).Any(d => d.Name == loop.Name)) continue;
            if ((await mounter.ListAsync(ct)).IsInUse(loop.Name))
            {
                logger.LogWarning("{Device} over {File} ({VolumeId}) has no journal entry but is mounted; leaving it", loop.Name, file, volumeId);
                continue;
            }
            logger.LogWarning("detaching residual {Device} over {File} ({VolumeId})", loop.Name, file, volumeId);
            SolarCsi.Core.Metrics.PluginMetrics.Current.CountReconcilerAction("detach-residual-loop");
            await loops.DetachAsync(loop.Name, ct);
        }
    }

    private IDisposable? TryAcquire(string volumeId)
    {
        try { return inFlight.Acquire(volumeId, "reconcile"); }
        catch (Grpc.Core.RpcException) { return null; }
    }
}
