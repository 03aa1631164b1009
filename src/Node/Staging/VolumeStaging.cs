using Microsoft.Extensions.Logging;
using SolarCsi.Core.Diagnostics;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Staging;

/// <summary>
/// NodeStage and NodeUnstage: a volume's source attached as a device and its filesystem at the staging path, and the
/// way back. Each step records intent in the journal first, then re-reads the kernel's view, so any step can be
/// repeated or resumed after a crash. Callers hold the volume's in-flight slot.
/// </summary>
public sealed class VolumeStaging(
    NodeJournal journal, AttacherSet attachers, VolumeSources sources, IMounter mounter, StagedFilesystem filesystem, ILogger<VolumeStaging> logger)
{
    public async Task StageAsync(StageRequest request, CancellationToken ct)
    {
        var attacher = attachers.ForMedia(StorageId.ParseVolume(request.VolumeId).Media);
        // Before anything is written: a node that cannot attach this media says which package it lacks.
        if (HostTools.MissingOf(attacher.RequiredTools) is [var missing, ..]) throw HostTools.Missing(missing);
        var entry = journal.Get(request.VolumeId);
        if (entry is not null)
        {
            if (entry.StagingPath != request.StagingPath && entry.Phase == StagePhase.Staged)
                throw CsiErrors.AlreadyExists($"volume {request.VolumeId} is already staged at {entry.StagingPath}");
            if (entry.Block != request.Block || (!request.Block && entry.FsType != request.FsType))
                throw CsiErrors.AlreadyExists($"volume {request.VolumeId} is already staged with a different capability");
        }
        if (entry is { Phase: StagePhase.Staged, Device: { } stagedDevice } staged && staged.StagingPath == request.StagingPath &&
            await attacher.FindAttachedAsync(staged.Source, ct) == stagedDevice)
        {
            var mounted = request.Block || (await mounter.ListAsync(ct)).Holds(staged.StagingPath, stagedDevice);
            var problem = await attacher.CheckAsync(stagedDevice, staged.Source, ct);
            if (mounted && problem is null) return;
            if (problem is not null) entry = await TearDownBrokenAsync(staged, stagedDevice, problem, ct);
        }
        var (source, readOnly) = await sources.PrepareAsync(request, ct);

        entry = (entry ?? new JournalEntry(request.VolumeId, StagePhase.Staging, request.StagingPath, attacher.Kind, source, null,
            request.Block, request.FsType, false, readOnly, [.. request.MountFlags], [])) with
        {
            Phase = StagePhase.Staging, StagingPath = request.StagingPath, ReadOnly = readOnly, AttachKind = attacher.Kind, Source = source,
        };
        await journal.SaveAsync(entry, ct);
        FaultPoints.Hit("stage:after-journal");

        // Every attacher's AttachAsync returns the device already attached to the source (and records it where the
        // attach path keeps a record) before it attaches anything.
        var device = await attacher.AttachAsync(source, readOnly, ct);
        FaultPoints.Hit("stage:after-attach");
        entry = entry with { Device = device };
        await journal.SaveAsync(entry, ct);

        if (!request.Block && attacher.ProvidesFilesystem)
            await filesystem.BindAsync(source, device, request, readOnly, ct);
        // Recorded with the staged entry, not on its own: nothing reads it back to recover (a re-stage after a crash
        // here probes the device and finds the filesystem), so a separate fsync'd write would only cost time.
        else if (!request.Block && await filesystem.MountAsync(device, request, readOnly, ct))
            entry = entry with { Formatted = true };

        await journal.SaveAsync(entry with { Phase = StagePhase.Staged }, ct);
        logger.LogInformation("staged {VolumeId} on {Device} at {StagingPath}", request.VolumeId, device, request.StagingPath);
    }

    /// <summary>
    /// A staged volume whose attachment broke (its NBD server went away and came back, nbdfuse died): take the
    /// dead mount and device down so the stage can attach afresh. Refused while pods still have it mounted.
    /// </summary>
    private async Task<JournalEntry> TearDownBrokenAsync(JournalEntry entry, string device, string problem, CancellationToken ct)
    {
        var published = (await mounter.ListAsync(ct)).PlacesOf(device, except: [entry.StagingPath, entry.Source]);
        if (published.Count > 0)
            throw CsiErrors.FailedPrecondition($"volume {entry.VolumeId} is broken ({problem}) and still published at {string.Join(", ", published)}; unpublish it first");
        logger.LogWarning("re-attaching {VolumeId}: {Problem}", entry.VolumeId, problem);
        // A device is detached only once nothing of it is mounted here: not under a stranger's mount either.
        if (!await mounter.UnmountAllOfAsync(entry.StagingPath, device, ct))
            throw CsiErrors.FailedPrecondition($"staging path {entry.StagingPath} holds another mount over volume {entry.VolumeId}'s; leaving both");
        await attachers.ForKind(entry.AttachKind).DetachAsync(device, entry.Source, ct);
        var reset = entry with { Phase = StagePhase.Staging, Device = null };
        await journal.SaveAsync(reset, ct);
        return reset;
    }

    public async Task UnstageAsync(string volumeId, string stagingPath, CancellationToken ct)
    {
        var entry = journal.Get(volumeId);
        // Nothing of this volume is staged at that path: for the CO, that path is already unstaged.
        if (entry is not null && entry.StagingPath != stagingPath) return;
        var mounts = await mounter.ListAsync(ct);
        var attacher = entry is not null ? attachers.ForKind(entry.AttachKind) : attachers.ForMedia(StorageId.ParseVolume(volumeId).Media);
        var source = entry?.Source ?? sources.Find(volumeId);
        // The journal's device counts only while it is still bound to this volume: after a crash between detach
        // and forgetting, the same /dev/loopN may already serve another volume.
        var device = source is null ? null : await attacher.FindAttachedAsync(source, ct);
        // Still mounted at our staging path though the attach path no longer reports it (e.g. its helper died):
        // that mount is ours to take down.
        if (device is null && entry?.Device is { } recorded && mounts.Holds(stagingPath, recorded))
            device = recorded;
        if (device is null && !mounts.IsMountPoint(stagingPath))
        {
            if (source is not null) await attacher.DetachAsync("", source, ct);
            sources.Forget(volumeId);
            if (entry is not null) journal.Remove(volumeId);
            return;
        }

        // Only ever unmount what is ours: a retried unstage must not take down whatever else sits at the path.
        if (mounts.HoldsOtherThan(stagingPath, device))
            throw CsiErrors.FailedPrecondition($"staging path {stagingPath} holds a mount that is not volume {volumeId}'s device; leaving it");
        // The source's own mount (a tmpfs volume's home) is the volume, not a user of it.
        if (device is not null && mounts.PlacesOf(device, except: [stagingPath, source]) is { Count: > 0 } others)
            throw CsiErrors.FailedPrecondition($"volume {volumeId} is still mounted at {string.Join(", ", others)}; unpublish first");
        if (entry is not null) await journal.SaveAsync(entry with { Phase = StagePhase.Unstaging }, ct);
        FaultPoints.Hit("unstage:after-journal");

        // Every layer there was checked to be the device's; one that appeared since is not taken down, and then
        // the device is not detached under it.
        if (device is not null && !await mounter.UnmountAllOfAsync(stagingPath, device, ct))
            throw CsiErrors.FailedPrecondition($"staging path {stagingPath} holds another mount over volume {volumeId}'s device; leaving both");
        FaultPoints.Hit("unstage:after-unmount");
        if (source is not null)
            await attacher.DetachAsync(device ?? "", source, ct);
        FaultPoints.Hit("unstage:after-detach");
        sources.Forget(volumeId);
        journal.Remove(volumeId);
        logger.LogInformation("unstaged {VolumeId} from {StagingPath}", volumeId, stagingPath);
    }
}
