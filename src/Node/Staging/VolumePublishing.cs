using Microsoft.Extensions.Logging;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Mounts;

namespace SolarCsi.Node.Staging;

/// <summary>
/// NodePublish and NodeUnpublish: binds of a staged volume into pods' target paths, and their removal. Only what
/// shows the volume's own device is ever unmounted or handed out. Callers hold the volume's in-flight slot.
/// </summary>
public sealed class VolumePublishing(NodeJournal journal, AttacherSet attachers, VolumeSources sources, IMounter mounter, ILogger<VolumePublishing> logger)
{
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
        if (!block && !mounts.Holds(stagingPath, entry.Device))
            throw CsiErrors.FailedPrecondition($"staging path {stagingPath} is not a live mount of {entry.Device}; stage it again");

        if (mounts.TopAt(targetPath) is { } existing)
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
        if (device is null && sources.Find(volumeId) is { } source)
            device = await attachers.ForMedia(StorageId.ParseVolume(volumeId).Media).FindAttachedAsync(source, ct);
        var mounts = await mounter.ListAsync(ct);
        if (mounts.HoldsOtherThan(targetPath, device))
            throw CsiErrors.FailedPrecondition($"target {targetPath} holds a mount that is not volume {volumeId}'s device; leaving it");
        if (device is not null && !await mounter.UnmountAllOfAsync(targetPath, device, ct, mounts))
            throw CsiErrors.FailedPrecondition($"target {targetPath} holds another mount over volume {volumeId}'s; leaving both");
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
}
