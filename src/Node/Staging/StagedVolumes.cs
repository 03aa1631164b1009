using SolarCsi.Core.Errors;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;

namespace SolarCsi.Node.Staging;

/// <summary>
/// What is asked of a volume once it is staged: where it is, whether its attachment still works (VolumeCondition,
/// the health gauge), its size, and growing its filesystem to a grown device (NodeExpand).
/// </summary>
public sealed class StagedVolumes(NodeJournal journal, AttacherSet attachers, IMounter mounter, BlockDevices devices, Filesystems filesystems)
{
    public JournalEntry RequireStagedAt(string volumeId, string volumePath)
    {
        var entry = journal.Get(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} is not staged on this node");
        if (entry.StagingPath != volumePath && entry.Targets.All(t => t.Path != volumePath))
            throw CsiErrors.NotFound($"volume {volumeId} is not staged or published at {volumePath}");
        if (!Path.Exists(volumePath)) throw CsiErrors.NotFound($"volume path {volumePath} does not exist");
        return entry;
    }

    /// <summary>Null when the volume's attachment works, else what is wrong.</summary>
    public async Task<string?> ConditionAsync(JournalEntry entry, CancellationToken ct)
    {
        if (entry.Device is null) return "the volume has no attached device";
        if (attachers.FindKind(entry.AttachKind) is not { } attacher) return $"attach kind '{entry.AttachKind}' is not available on this node";
        if (await attacher.CheckAsync(entry.Device, entry.Source, ct) is { } problem) return problem;
        if (!entry.Block && !(await mounter.ListAsync(ct)).Holds(entry.StagingPath, entry.Device))
            return $"staging path {entry.StagingPath} is no longer mounted";
        return null;
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
            var mountPoint = (await mounter.ListAsync(ct)).IsMountPoint(volumePath) ? volumePath : entry.StagingPath;
            await filesystems.GrowAsync(entry.Device, mountPoint, entry.FsType, ct);
        }
        return size;
    }
}
