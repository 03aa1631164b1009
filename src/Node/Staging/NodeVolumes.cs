using Microsoft.Extensions.Logging;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Devices;
using SolarCsi.Core.Diagnostics;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Nbd;
using SolarCsi.Core.Validation;
using SolarCsi.Core.Mounts;
using SolarCsi.Core.Processes;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Staging;

/// <summary>What NodeStage asks for, already validated.</summary>
public sealed record StageRequest(string VolumeId, string StagingPath, bool Block, string FsType, IReadOnlyList<string> MountFlags,
    IReadOnlyDictionary<string, string> PublishContext, IReadOnlyList<string>? MkfsOptions = null);

/// <summary>
/// The node's volume lifecycle: attach and mount (stage), bind into pods (publish), and the way back. Each step
/// records intent in the journal first, then re-reads the kernel's view, so any step can be repeated or resumed
/// after a crash. Callers hold the volume's in-flight slot.
/// </summary>
public sealed class NodeVolumes(
    PoolSet pools, NodeJournal journal, AttacherSet attachers, string nbdClientRoot, IMounter mounter, BlockDevices devices,
    Filesystems filesystems, InFlightTracker inFlight, ILogger<NodeVolumes> logger)
{
    public InFlightTracker InFlight => inFlight;

    private readonly VolumeSources _sources = new(pools, nbdClientRoot);

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
            staged.Block == request.Block && await attacher.FindAttachedAsync(staged.Source, ct) == stagedDevice)
        {
            var mounted = request.Block || (await mounter.ListAsync(ct)).Any(m => m.MountPoint == staged.StagingPath && m.Source == stagedDevice);
            var problem = await attacher.CheckAsync(stagedDevice, staged.Source, ct);
            if (mounted && problem is null) return;
            if (problem is not null) entry = await TearDownBrokenAsync(staged, stagedDevice, problem, ct);
        }
        var (source, readOnly) = await _sources.PrepareAsync(request, ct);

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

        if (!request.Block)
            entry = attacher.ProvidesFilesystem
                ? await BindFilesystemAsync(entry, device, request, readOnly, ct)
                : await MountFilesystemAsync(entry, device, request, readOnly, ct);

        await journal.SaveAsync(entry with { Phase = StagePhase.Staged }, ct);
        logger.LogInformation("staged {VolumeId} on {Device} at {StagingPath}", request.VolumeId, device, request.StagingPath);
    }

    /// <summary>
    /// A staged volume whose attachment broke (its NBD server went away and came back, nbdfuse died): take the
    /// dead mount and device down so the stage can attach afresh. Refused while pods still have it mounted.
    /// </summary>
    private async Task<JournalEntry> TearDownBrokenAsync(JournalEntry entry, string device, string problem, CancellationToken ct)
    {
        var published = (await mounter.ListAsync(ct)).Where(m => m.Shows(device) && m.MountPoint != entry.StagingPath && m.MountPoint != entry.Source)
            .Select(m => m.MountPoint).ToArray();
        if (published.Length > 0)
            throw CsiErrors.FailedPrecondition($"volume {entry.VolumeId} is broken ({problem}) and still published at {string.Join(", ", published)}; unpublish it first");
        logger.LogWarning("re-attaching {VolumeId}: {Problem}", entry.VolumeId, problem);
        while ((await mounter.ListAsync(ct)).Any(m => m.MountPoint == entry.StagingPath && m.Source == device))
            await mounter.UnmountAsync(entry.StagingPath, ct);
        await attachers.ForKind(entry.AttachKind).DetachAsync(device, entry.Source, ct);
        var reset = entry with { Phase = StagePhase.Staging, Device = null };
        await journal.SaveAsync(reset, ct);
        return reset;
    }

    /// <summary>Null when the volume's attachment works, else what is wrong.</summary>
    public async Task<string?> ConditionAsync(JournalEntry entry, CancellationToken ct)
    {
        if (entry.Device is null) return "the volume has no attached device";
        if (await attachers.ForKind(entry.AttachKind).CheckAsync(entry.Device, entry.Source, ct) is { } problem) return problem;
        if (!entry.Block && !(await mounter.ListAsync(ct)).Any(m => m.MountPoint == entry.StagingPath && m.Source == entry.Device))
            return $"staging path {entry.StagingPath} is no longer mounted";
        return null;
    }

    /// <summary>A source that is a filesystem already (a volume's tmpfs): the staging path is a bind of it.</summary>
    private async Task<JournalEntry> BindFilesystemAsync(JournalEntry entry, string device, StageRequest request, bool readOnly, CancellationToken ct)
    {
        if ((await mounter.ListAsync(ct)).LastOrDefault(m => m.MountPoint == request.StagingPath) is { } existing)
        {
            if (existing.Source == device) return entry;
            throw CsiErrors.AlreadyExists($"staging path {request.StagingPath} already holds a mount of {existing.Source}");
        }
        Directory.CreateDirectory(request.StagingPath);
        await mounter.BindAsync(entry.Source, request.StagingPath, readOnly, ct);
        FaultPoints.Hit("stage:after-mount");
        return entry;
    }

    private async Task<JournalEntry> MountFilesystemAsync(JournalEntry entry, string device, StageRequest request, bool readOnly, CancellationToken ct)
    {
        var mounts = await mounter.ListAsync(ct);
        if (mounts.LastOrDefault(m => m.MountPoint == request.StagingPath) is { } existing)
        {
            if (existing.Source == device) return entry;
            throw CsiErrors.AlreadyExists($"staging path {request.StagingPath} already holds a mount of {existing.Source}");
        }

        // Never format what we cannot see: an empty or unreadable device is an attach failure, not a blank disk.
        var size = devices.SizeOf(device);
        if (size <= 0) throw CsiErrors.Internal($"device {device} reports size 0; refusing to probe or format it");
        var signatures = await devices.ProbeAsync(device, ct);
        var dax = SolarCsi.Core.Media.MediaCatalog.Of(StorageId.ParseVolume(request.VolumeId).Media).MountsWithDax;
        if (signatures.Count == 0 && readOnly)
            throw CsiErrors.FailedPrecondition($"volume {request.VolumeId} is read-only here and has no filesystem; populate it through a writer (or a snapshot) first");
        if (signatures.Count == 0)
        {
            FaultPoints.Fail("mkfs");
            await filesystems.FormatAsync(device, request.FsType, dax ? Filesystems.ForDax(request.FsType, request.MkfsOptions ?? []) : request.MkfsOptions ?? [], ct);
            FaultPoints.Hit("stage:after-format");
            // Recorded with the staged entry, not on its own: nothing reads it back to recover (a re-stage after a
            // crash here probes the device and finds the filesystem), so a separate fsync'd write would only cost time.
            entry = entry with { Formatted = true };
        }
        else if (!signatures.TryGetValue("TYPE", out var found) || found != request.FsType)
        {
            var what = signatures.TryGetValue("TYPE", out var t) ? $"a {t} filesystem" : signatures.TryGetValue("PTTYPE", out var pt) ? $"a {pt} partition table" : "unknown data";
            throw CsiErrors.FailedPrecondition($"device {device} of volume {request.VolumeId} holds {what}, not {request.FsType}; refusing to mount or format it");
        }

        // A filesystem smaller than its device (restored or cloned into a bigger volume, expanded while detached):
        // the pod must get the size it asked for. ext4 grows before the mount, xfs only while mounted.
        var grow = signatures.Count > 0 && !readOnly;
        if (grow && request.FsType == "ext4" && await filesystems.Ext4SizeAsync(device, ct) + CapacityRules.MiB < size)
        {
            logger.LogInformation("growing the ext4 of {VolumeId} on {Device} to {Bytes} bytes before mounting it", request.VolumeId, device, size);
            await filesystems.GrowExt4OfflineAsync(device, ct);
        }
        Directory.CreateDirectory(request.StagingPath);
        await mounter.MountAsync(device, request.StagingPath, request.FsType, MountOptions(request.FsType, request.MountFlags, readOnly, dax), ct);
        FaultPoints.Hit("stage:after-mount");
        // xfs_growfs is a no-op on a filesystem that already fills its device.
        if (grow && request.FsType == "xfs") await filesystems.GrowAsync(device, request.StagingPath, "xfs", ct);
        return entry;
    }

    public static IReadOnlyList<string> MountOptions(string fsType, IReadOnlyList<string> flags, bool readOnly, bool dax = false)
    {
        var options = new List<string>(flags);
        // Persistent memory: load/store straight to the media, bypassing the page cache.
        if (dax && !options.Any(o => o.StartsWith("dax", StringComparison.Ordinal))) options.Add("dax");
        // Two mounts of the same xfs (a clone and its source) would clash on the UUID otherwise.
        if (fsType == "xfs" && !options.Contains("nouuid")) options.Add("nouuid");
        if (readOnly)
        {
            // Many readers share one export: nobody may replay the journal, which would be a write.
            options.Add("ro");
            options.Add(fsType == "xfs" ? "norecovery" : "noload");
        }
        return options;
    }

    public async Task UnstageAsync(string volumeId, string stagingPath, CancellationToken ct)
    {
        var entry = journal.Get(volumeId);
        // Nothing of this volume is staged at that path: for the CO, that path is already unstaged.
        if (entry is not null && entry.StagingPath != stagingPath) return;
        var mounts = await mounter.ListAsync(ct);
        var attacher = entry is not null ? attachers.ForKind(entry.AttachKind) : attachers.ForMedia(StorageId.ParseVolume(volumeId).Media);
        var source = entry?.Source ?? _sources.Find(volumeId);
        // The journal's device counts only while it is still bound to this volume: after a crash between detach
        // and forgetting, the same /dev/loopN may already serve another volume.
        var device = source is null ? null : await attacher.FindAttachedAsync(source, ct);
        // Still mounted at our staging path though the attach path no longer reports it (e.g. its helper died):
        // that mount is ours to take down.
        if (device is null && entry?.Device is { } recorded && mounts.Any(m => m.MountPoint == stagingPath && m.Shows(recorded)))
            device = recorded;
        if (device is null && !mounts.Any(m => m.MountPoint == stagingPath))
        {
            if (source is not null) await attacher.DetachAsync("", source, ct);
            _sources.Forget(volumeId);
            if (entry is not null) journal.Remove(volumeId);
            return;
        }

        // Only ever unmount what is ours: a retried unstage must not take down whatever else sits at the path.
        if (mounts.Any(m => m.MountPoint == stagingPath && (device is null || !m.Shows(device))))
            throw CsiErrors.FailedPrecondition($"staging path {stagingPath} holds a mount that is not volume {volumeId}'s device; leaving it");
        if (device is not null)
        {
            // The source's own mount (a tmpfs volume's home) is the volume, not a user of it.
            var others = mounts.Where(m => m.Shows(device) && m.MountPoint != stagingPath && m.MountPoint != source).Select(m => m.MountPoint).ToArray();
            if (others.Length > 0)
                throw CsiErrors.FailedPrecondition($"volume {volumeId} is still mounted at {string.Join(", ", others)}; unpublish first");
        }
        if (entry is not null) await journal.SaveAsync(entry with { Phase = StagePhase.Unstaging }, ct);
        FaultPoints.Hit("unstage:after-journal");

        while ((await mounter.ListAsync(ct)).Any(m => m.MountPoint == stagingPath))
            await mounter.UnmountAsync(stagingPath, ct);
        FaultPoints.Hit("unstage:after-unmount");
        if (source is not null)
            await attacher.DetachAsync(device ?? "", source, ct);
        FaultPoints.Hit("unstage:after-detach");
        _sources.Forget(volumeId);
        journal.Remove(volumeId);
        logger.LogInformation("unstaged {VolumeId} from {StagingPath}", volumeId, stagingPath);
    }

    public async Task PublishAsync(string volumeId, string stagingPath, string targetPath, bool block, bool readOnly, CancellationToken ct)
    {
        var entry = journal.Get(volumeId);
        if (entry is null || entry.Phase != StagePhase.Staged || entry.Device is null)
            throw CsiErrors.FailedPrecondition($"volume {volumeId} is not staged on this node");
        if (entry.StagingPath != stagingPath)
            throw CsiErrors.FailedPrecondition($"volume {volumeId} is staged at {entry.StagingPath}, not {stagingPath}");
        if (entry.Block != block)
            throw CsiErrors.AlreadyExists($"volume {volumeId} was staged as {(entry.Block ? "block" : "filesystem")}");

        var mounts = await mounter.ListAsync(ct);
        // A failed unstage can leave an empty staging directory; bind-mounting it would hand the pod an empty disk.
        if (await attachers.ForKind(entry.AttachKind).FindAttachedAsync(entry.Source, ct) != entry.Device)
            throw CsiErrors.FailedPrecondition($"device {entry.Device} of volume {volumeId} is no longer attached; stage it again");
        if (!block && !mounts.Any(m => m.MountPoint == stagingPath && m.Source == entry.Device))
            throw CsiErrors.FailedPrecondition($"staging path {stagingPath} is not a live mount of {entry.Device}; stage it again");

        if (mounts.LastOrDefault(m => m.MountPoint == targetPath) is { } existing)
        {
            if (existing.Shows(entry.Device) && existing.ReadOnly == readOnly) return;
            throw CsiErrors.AlreadyExists($"target {targetPath} is already mounted ({existing.Source}{existing.Root}, {(existing.ReadOnly ? "ro" : "rw")})");
        }

        if (block)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(targetPath)!);
            if (Directory.Exists(targetPath)) Directory.Delete(targetPath);
            if (!File.Exists(targetPath)) await File.WriteAllBytesAsync(targetPath, [], ct);
        }
        else
        {
            Directory.CreateDirectory(targetPath);
        }
        await journal.SaveAsync(entry with { Targets = [.. entry.Targets.Where(t => t.Path != targetPath), new PublishTarget(targetPath, readOnly)] }, ct);
        await mounter.BindAsync(block ? entry.Device : stagingPath, targetPath, readOnly, ct);
        logger.LogInformation("published {VolumeId} at {TargetPath} ({Mode})", volumeId, targetPath, readOnly ? "ro" : "rw");
    }

    public async Task UnpublishAsync(string volumeId, string targetPath, CancellationToken ct)
    {
        var entry = journal.Get(volumeId);
        var device = entry?.Device;
        if (device is null && _sources.Find(volumeId) is { } source)
            device = await attachers.ForMedia(StorageId.ParseVolume(volumeId).Media).FindAttachedAsync(source, ct);
        while ((await mounter.ListAsync(ct)).LastOrDefault(m => m.MountPoint == targetPath) is { } mount)
        {
            if (device is null || !mount.Shows(device))
                throw CsiErrors.FailedPrecondition($"target {targetPath} holds a mount that is not volume {volumeId}'s device; leaving it");
            await mounter.UnmountAsync(targetPath, ct);
        }
        // Never recursive: if something is left inside, it is data that was not on our volume.
        if (Directory.Exists(targetPath))
        {
            if (Directory.EnumerateFileSystemEntries(targetPath).Any())
                throw CsiErrors.FailedPrecondition($"target {targetPath} is unmounted but not empty; leaving it for inspection");
            Directory.Delete(targetPath);
        }
        else if (File.Exists(targetPath))
        {
            File.Delete(targetPath);
        }
        if (entry is not null && entry.Targets.Any(t => t.Path == targetPath))
            await journal.SaveAsync(entry with { Targets = entry.Targets.Where(t => t.Path != targetPath).ToList() }, ct);
    }

    public JournalEntry RequireStagedAt(string volumeId, string volumePath)
    {
        var entry = journal.Get(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} is not staged on this node");
        if (entry.StagingPath != volumePath && entry.Targets.All(t => t.Path != volumePath))
            throw CsiErrors.NotFound($"volume {volumeId} is not staged or published at {volumePath}");
        if (!Path.Exists(volumePath)) throw CsiErrors.NotFound($"volume path {volumePath} does not exist");
        return entry;
    }

    public long DeviceSize(JournalEntry entry) => entry.Device is null ? 0 : devices.SizeOf(entry.Device);

    public async Task<long> ExpandAsync(string volumeId, string volumePath, long requiredBytes, CancellationToken ct)
    {
        var entry = RequireStagedAt(volumeId, volumePath);
        if (entry.Device is null) throw CsiErrors.FailedPrecondition($"volume {volumeId} has no attached device");
        var attacher = attachers.ForKind(entry.AttachKind);
        // A tmpfs grew when the pool remounted it; there is no device or filesystem to grow here.
        if (attacher.ProvidesFilesystem) return FilesystemStats.Of(entry.StagingPath).TotalBytes;
        await attacher.RefreshCapacityAsync(entry.Device, ct);
        var size = devices.SizeOf(entry.Device);
        if (requiredBytes > 0 && size < requiredBytes)
            throw CsiErrors.FailedPrecondition($"device {entry.Device} is {size} bytes, less than the {requiredBytes} requested; expand the volume first");
        if (!entry.Block)
        {
            var mountPoint = (await mounter.ListAsync(ct)).Any(m => m.MountPoint == volumePath) ? volumePath : entry.StagingPath;
            await filesystems.GrowAsync(entry.Device, mountPoint, entry.FsType, ct);
        }
        return size;
    }
}
