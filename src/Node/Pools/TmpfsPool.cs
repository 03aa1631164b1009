using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Storage;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Pools;

/// <summary>
/// One size-limited tmpfs per volume, mounted under the pool's directory for the volume's whole life; NodeStage
/// bind-mounts it. The data lives in memory: it is gone on delete, and on a reboot (the volume then comes back
/// empty at its next stage, as an emptyDir with medium Memory would). Capacity is what the configuration grants,
/// accounted by provisioned size, because tmpfs allocates lazily and would otherwise overcommit RAM.
/// A snapshot is a tar archive of the volume's files on the node's disk (the state directory), restored or cloned
/// into a new tmpfs. tmpfs cannot be frozen, so a volume is snapshotted or cloned only while no pod mounts it: a
/// copy taken under a writer could be torn.
/// </summary>
public sealed class TmpfsPool : IMediaPool
{
    /// <summary>Mount source of a volume's tmpfs: unique per volume, so mountinfo tells whose every bind is.</summary>
    public const string SourcePrefix = "solar-";

    private readonly PoolRecords _records;
    private readonly string _mounts;
    private readonly long _capacity;
    private readonly IMounter _mounter;
    private readonly IProcessRunner _runner;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _allocation = new(1, 1);

    public TmpfsPool(string name, string root, long capacityBytes, IMounter mounter, IProcessRunner runner, ILogger logger)
    {
        Name = name;
        _records = new PoolRecords(root);
        _mounts = Path.Combine(root, "mounts");
        Directory.CreateDirectory(_mounts);
        _capacity = capacityBytes;
        _mounter = mounter;
        _runner = runner;
        _logger = logger;
        // An archive still being written when the plugin stopped is incomplete; its snapshot was never recorded.
        foreach (var partial in Directory.EnumerateFiles(_records.SnapshotsDir, "*" + PartialSuffix)) File.Delete(partial);
    }

    private const string PartialSuffix = ".creating";
    private static readonly TimeSpan CopyTimeout = TimeSpan.FromMinutes(30);

    public string Name { get; }
    public string Media => VolumeParameters.TmpfsMedia;
    public bool NodeExpansionRequired => false;
    public IReadOnlyList<string> RequiredTools { get; } = ["mount", "umount", "tar", "cp"];
    public IReadOnlyList<string> UnreadableVolumeNames() => _records.UnreadableVolumeNames();
    public bool IsUnreadable(string volumeId) => _records.IsUnreadable(volumeId);

    public static string SourceOf(string volumeId) => SourcePrefix + PoolRecords.NameOf(volumeId);

    public PoolInfo Describe()
    {
        var free = Math.Max(0, _capacity - ListVolumes().Sum(v => v.CapacityBytes));
        return new PoolInfo
        {
            Name = Name, Media = Media, TotalBytes = _capacity, FreeBytes = free, LargestFreeBytes = free, SupportsBlock = false, SupportsSnapshots = true,
        };
    }

    public string BackingPathOf(string volumeId) => Path.Combine(_mounts, PoolRecords.NameOf(volumeId));
    public VolumeRecord? GetVolume(string volumeId) => _records.GetVolume(volumeId);
    public IReadOnlyList<VolumeRecord> ListVolumes() => _records.ListVolumes();
    public IReadOnlyList<SnapshotRecord> ListSnapshots() => _records.ListSnapshots();
    private string ArchiveOf(string snapshotId) => Path.Combine(_records.SnapshotsDir, PoolRecords.NameOf(snapshotId) + ".tar");
    public Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct) => _records.SaveVolumeAsync(record, ct);

    public async Task<VolumeRecord> CreateVolumeAsync(string volumeId, string name, long capacityBytes, long limitBytes,
        Dictionary<string, string> parameters, ContentSource? source, CancellationToken ct)
    {
        await _allocation.WaitAsync(ct);
        try
        {
            if (GetVolume(volumeId) is { } existing) return existing;
            var (copyFrom, sourceSize) = await ContentOfAsync(source, ct);
            if (copyFrom is not null && capacityBytes < sourceSize)
                throw CsiErrors.OutOfRange($"requested capacity {capacityBytes} is smaller than the source ({sourceSize} bytes)");
            var free = Describe().FreeBytes;
            if (free < capacityBytes) throw CsiErrors.ResourceExhausted($"tmpfs pool {Name} has {free} bytes free, {capacityBytes} requested");
            // Mount first, record last: a crash in between leaves an unrecorded mount, which start-up removes.
            await MountAsync(volumeId, capacityBytes, ct);
            if (copyFrom is not null)
            {
                try { await copyFrom(BackingPathOf(volumeId)); }
                catch
                {
                    await UnmountAsync(BackingPathOf(volumeId), volumeId, CancellationToken.None);
                    throw;
                }
            }
            var record = VolumeRecord.New(volumeId, name, capacityBytes, parameters, source);
            await SaveVolumeAsync(record, ct);
            _logger.LogInformation("pool {Pool}: created tmpfs volume {VolumeId} ({Bytes} bytes) for {Name}", Name, volumeId, capacityBytes, name);
            return record;
        }
        finally
        {
            _allocation.Release();
        }
    }

    public async Task DeleteVolumeAsync(string volumeId, CancellationToken ct)
    {
        var dir = BackingPathOf(volumeId);
        var users = (await _mounter.ListAsync(ct)).PlacesOf(SourceOf(volumeId), except: dir);
        if (users.Count > 0) throw CsiErrors.FailedPrecondition($"volume {volumeId} is still mounted at {string.Join(", ", users)}");
        _records.DeleteVolume(volumeId);
        await UnmountAsync(dir, volumeId, ct);
        _logger.LogInformation("pool {Pool}: deleted tmpfs volume {VolumeId}; its contents are gone", Name, volumeId);
    }

    public async Task<VolumeRecord> ExpandVolumeAsync(string volumeId, long capacityBytes, CancellationToken ct)
    {
        var record = GetVolume(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} not found");
        if (capacityBytes <= record.CapacityBytes) return record;
        await _allocation.WaitAsync(ct);
        try
        {
            var growth = capacityBytes - record.CapacityBytes;
            if (Describe().FreeBytes < growth) throw CsiErrors.ResourceExhausted($"tmpfs pool {Name} cannot grow {volumeId} by {growth} bytes");
            // The size is the superblock's: every bind of it (staging, pods) sees the new size at once.
            await PrepareBackingAsync(volumeId, ct);
            await _mounter.RemountAsync(BackingPathOf(volumeId), [$"size={capacityBytes}"], ct);
            var grown = record with { CapacityBytes = capacityBytes };
            await SaveVolumeAsync(grown, ct);
            return grown;
        }
        finally
        {
            _allocation.Release();
        }
    }

    public async Task<string> PrepareBackingAsync(string volumeId, CancellationToken ct)
    {
        var record = GetVolume(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} not found");
        var dir = BackingPathOf(volumeId);
        if (!(await _mounter.ListAsync(ct)).Holds(dir, SourceOf(volumeId)))
        {
            _logger.LogWarning("pool {Pool}: the tmpfs of {VolumeId} is gone (a reboot?); it comes back empty", Name, volumeId);
            await MountAsync(volumeId, record.CapacityBytes, ct);
        }
        return dir;
    }

    private async Task MountAsync(string volumeId, long bytes, CancellationToken ct)
    {
        var dir = BackingPathOf(volumeId);
        Directory.CreateDirectory(dir);
        if ((await _mounter.ListAsync(ct)).IsMountPoint(dir)) return;
        await _mounter.MountAsync(SourceOf(volumeId), dir, "tmpfs", [$"size={bytes}", "mode=0755"], ct);
    }

    private async Task UnmountAsync(string dir, string volumeId, CancellationToken ct)
    {
        if (!await _mounter.UnmountAllOfAsync(dir, SourceOf(volumeId), ct))
        {
            // Someone mounted over it: theirs is not ours to take down. Start-up's orphan sweep finds it again.
            _logger.LogWarning("pool {Pool}: the tmpfs of {VolumeId} at {Dir} is under another mount; left mounted", Name, volumeId, dir);
            return;
        }
        if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
    }

    /// <summary>Unmounts tmpfs mounts that no record explains (a crash between mount and record, or mid-delete).</summary>
    public async Task RemoveOrphansAsync(CancellationToken ct)
    {
        foreach (var dir in Directory.EnumerateDirectories(_mounts))
        {
            var name = Path.GetFileName(dir);
            var volumeId = ListVolumes().FirstOrDefault(v => PoolRecords.NameOf(v.VolumeId) == name)?.VolumeId;
            if (volumeId is not null) continue;
            var source = SourcePrefix + name;
            if ((await _mounter.ListAsync(ct)).PlacesOf(source, except: dir).Count > 0)
            {
                _logger.LogWarning("pool {Pool}: unrecorded tmpfs {Dir} is still mounted elsewhere; leaving it", Name, dir);
                continue;
            }
            // A volume whose record was set aside as unreadable keeps its tmpfs: its memory is the only copy of its data.
            // Anything else unrecorded is an interrupted create, restore or delete.
            if (StateFiles.IsUnreadable(Path.Combine(_records.VolumesDir, name + ".json")))
            {
                _logger.LogWarning("pool {Pool}: tmpfs {Dir} belongs to a volume whose record is unreadable; kept (see `solar node-state`)", Name, dir);
                continue;
            }
            _logger.LogWarning("pool {Pool}: removing tmpfs {Dir} left by an interrupted create or delete", Name, dir);
            if (!await _mounter.UnmountAllOfAsync(dir, source, ct)) continue;
            if (!Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
        }
    }

    /// <summary>How to fill a new volume from <paramref name="source"/> (null: it starts empty), and the source's size.</summary>
    private async Task<(Func<string, Task>? Copy, long Size)> ContentOfAsync(ContentSource? source, CancellationToken ct)
    {
        if (source?.SnapshotId is { Length: > 0 } snapshotId)
        {
            var snapshot = _records.GetSnapshot(snapshotId) ?? throw CsiErrors.NotFound($"snapshot {snapshotId} not found");
            return (target => _runner.RunAsync("tar", ["--extract", "--file", ArchiveOf(snapshotId), "--directory", target, "--numeric-owner",
                "--same-permissions", "--xattrs", "--acls"], ct, CopyTimeout), snapshot.SizeBytes);
        }
        if (source?.VolumeId is { Length: > 0 } volumeId)
        {
            var volume = GetVolume(volumeId) ?? throw CsiErrors.NotFound($"source volume {volumeId} not found");
            await RequireNotInUseAsync(volumeId, "cloned", ct);
            var from = await PrepareBackingAsync(volumeId, ct);
            return (target => _runner.RunAsync("cp", ["--archive", "--", from + "/.", target], ct, CopyTimeout), volume.CapacityBytes);
        }
        return (null, 0);
    }

    /// <summary>tmpfs has no freeze: a copy of a volume a pod mounts could be torn, so it is refused, not taken.</summary>
    private async Task RequireNotInUseAsync(string volumeId, string what, CancellationToken ct)
    {
        if ((await _mounter.ListAsync(ct)).PlacesOf(SourceOf(volumeId), except: BackingPathOf(volumeId)).Count > 0)
            throw CsiErrors.FailedPrecondition($"tmpfs volume {volumeId} is mounted by a pod and tmpfs cannot be frozen, so it can be {what} only " +
                "while nothing mounts it (a copy taken under a writer could be torn)");
    }

    public async Task<SnapshotRecord> CreateSnapshotAsync(string snapshotId, string name, string sourceVolumeId, CancellationToken ct)
    {
        if (_records.GetSnapshot(snapshotId) is { } existing) return existing;
        var volume = GetVolume(sourceVolumeId) ?? throw CsiErrors.NotFound($"source volume {sourceVolumeId} not found");
        await RequireNotInUseAsync(sourceVolumeId, "snapshotted", ct);
        var from = await PrepareBackingAsync(sourceVolumeId, ct);
        var archive = ArchiveOf(snapshotId);
        var partial = archive + PartialSuffix;
        try
        {
            await _runner.RunAsync("tar", ["--create", "--file", partial, "--directory", from, "--numeric-owner", "--sparse", "--xattrs", "--acls", "."],
                ct, CopyTimeout);
            await using (var stream = new FileStream(partial, FileMode.Open, FileAccess.Write)) stream.Flush(flushToDisk: true);
            File.Move(partial, archive, overwrite: true);
        }
        finally
        {
            if (File.Exists(partial)) File.Delete(partial);
        }
        var record = new SnapshotRecord(snapshotId, name, sourceVolumeId, volume.CapacityBytes, DateTimeOffset.UtcNow);
        await _records.SaveSnapshotAsync(record, ct);
        _logger.LogInformation("pool {Pool}: snapshot {SnapshotId} of tmpfs volume {VolumeId}", Name, snapshotId, sourceVolumeId);
        return record;
    }

    public Task DeleteSnapshotAsync(string snapshotId, CancellationToken ct)
    {
        // Record first: a crash after this leaves an archive no record names, which is never read again.
        _records.DeleteSnapshot(snapshotId);
        if (File.Exists(ArchiveOf(snapshotId))) File.Delete(ArchiveOf(snapshotId));
        return Task.CompletedTask;
    }
}
