using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Mounts;
using SolarCsi.Core.Validation;

namespace SolarCsi.Node.Pools;

/// <summary>
/// One size-limited tmpfs per volume, mounted under the pool's directory for the volume's whole life; NodeStage
/// bind-mounts it. The data lives in memory: it is gone on delete, and on a reboot (the volume then comes back
/// empty at its next stage, as an emptyDir with medium Memory would). Capacity is what the configuration grants,
/// accounted by provisioned size, because tmpfs allocates lazily and would otherwise overcommit RAM.
/// </summary>
public sealed class TmpfsPool : IMediaPool
{
    /// <summary>Mount source of a volume's tmpfs: unique per volume, so mountinfo tells whose every bind is.</summary>
    public const string SourcePrefix = "solar-";

    private readonly PoolRecords _records;
    private readonly string _mounts;
    private readonly long _capacity;
    private readonly IMounter _mounter;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _allocation = new(1, 1);

    public TmpfsPool(string name, string root, long capacityBytes, IMounter mounter, ILogger logger)
    {
        Name = name;
        _records = new PoolRecords(root);
        _mounts = Path.Combine(root, "mounts");
        Directory.CreateDirectory(_mounts);
        _capacity = capacityBytes;
        _mounter = mounter;
        _logger = logger;
    }

    public string Name { get; }
    public string Media => VolumeParameters.TmpfsMedia;
    public bool NodeExpansionRequired => false;

    public static string SourceOf(string volumeId) => SourcePrefix + PoolRecords.NameOf(volumeId);

    public PoolInfo Describe()
    {
        var free = Math.Max(0, _capacity - ListVolumes().Sum(v => v.CapacityBytes));
        return new PoolInfo { Name = Name, Media = Media, TotalBytes = _capacity, FreeBytes = free, LargestFreeBytes = free, SupportsBlock = false };
    }

    public string BackingPathOf(string volumeId) => Path.Combine(_mounts, PoolRecords.NameOf(volumeId));
    public VolumeRecord? GetVolume(string volumeId) => _records.GetVolume(volumeId);
    public IReadOnlyList<VolumeRecord> ListVolumes() => _records.ListVolumes();
    public IReadOnlyList<SnapshotRecord> ListSnapshots() => [];
    public Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct) => _records.SaveVolumeAsync(record, ct);

    public async Task<VolumeRecord> CreateVolumeAsync(string volumeId, string name, long capacityBytes, long limitBytes,
        Dictionary<string, string> parameters, ContentSource? source, CancellationToken ct)
    {
        await _allocation.WaitAsync(ct);
        try
        {
            if (GetVolume(volumeId) is { } existing) return existing;
            if (source is not null) throw CsiErrors.InvalidArgument("tmpfs volumes cannot be created from a snapshot or another volume");
            var free = Describe().FreeBytes;
            if (free < capacityBytes) throw CsiErrors.ResourceExhausted($"tmpfs pool {Name} has {free} bytes free, {capacityBytes} requested");
            // Mount first, record last: a crash in between leaves an unrecorded mount, which start-up removes.
            await MountAsync(volumeId, capacityBytes, ct);
            var record = new VolumeRecord(volumeId, name, capacityBytes, parameters, null, null, DateTimeOffset.UtcNow, []);
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
        var mounts = await _mounter.ListAsync(ct);
        var users = mounts.Where(m => m.Source == SourceOf(volumeId) && m.MountPoint != dir).Select(m => m.MountPoint).ToArray();
        if (users.Length > 0) throw CsiErrors.FailedPrecondition($"volume {volumeId} is still mounted at {string.Join(", ", users)}");
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
        if (!(await _mounter.ListAsync(ct)).Any(m => m.MountPoint == dir && m.Source == SourceOf(volumeId)))
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
        if ((await _mounter.ListAsync(ct)).Any(m => m.MountPoint == dir)) return;
        await _mounter.MountAsync(SourceOf(volumeId), dir, "tmpfs", [$"size={bytes}", "mode=0755"], ct);
    }

    private async Task UnmountAsync(string dir, string volumeId, CancellationToken ct)
    {
        while ((await _mounter.ListAsync(ct)).Any(m => m.MountPoint == dir && m.Source == SourceOf(volumeId)))
            await _mounter.UnmountAsync(dir, ct);
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
            var mounts = await _mounter.ListAsync(ct);
            if (mounts.Any(m => m.Source == source && m.MountPoint != dir))
            {
                _logger.LogWarning("pool {Pool}: unrecorded tmpfs {Dir} is still mounted elsewhere; leaving it", Name, dir);
                continue;
            }
            _logger.LogWarning("pool {Pool}: removing tmpfs {Dir} left by an interrupted create or delete", Name, dir);
            while ((await _mounter.ListAsync(ct)).Any(m => m.MountPoint == dir && m.Source == source)) await _mounter.UnmountAsync(dir, ct);
            if (!Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
        }
    }

    public Task<SnapshotRecord> CreateSnapshotAsync(string snapshotId, string name, string sourceVolumeId, CancellationToken ct) =>
        throw CsiErrors.FailedPrecondition($"volume {sourceVolumeId} is a tmpfs volume; tmpfs volumes cannot be snapshotted");

    public Task DeleteSnapshotAsync(string snapshotId, CancellationToken ct) => Task.CompletedTask;
}
