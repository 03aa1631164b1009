using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Pools.Disk;

/// <summary>
/// Whole disks handed out one per volume. A request gets the smallest free blank disk that fits (the volume's
/// capacity is the disk's size, which the CO sees in the response); delete wipes the disk's signatures (and
/// discards its blocks where the device supports it) before it can be handed out again.
/// </summary>
public sealed class DiskPool : IMediaPool
{
    private const string PathKey = "path", IdentityKey = "identity";

    private readonly PoolRecords _records;
    private readonly DiskInventory _inventory;
    private readonly IMounter _mounter;
    private readonly IProcessRunner _runner;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _allocation = new(1, 1);
    private volatile IReadOnlyList<DiskCandidate> _lastScan = [];
    private long _lastScanTicks;

    public DiskPool(string name, string root, DiskInventory inventory, IMounter mounter, IProcessRunner runner, ILogger logger)
    {
        Name = name;
        _records = new PoolRecords(root);
        _inventory = inventory;
        _mounter = mounter;
        _runner = runner;
        _logger = logger;
    }

    public string Name { get; }
    public string Media => VolumeParameters.DiskMedia;
    public bool NodeExpansionRequired => false;
    public IReadOnlyList<string> RequiredTools { get; } = ["blkid", "wipefs", "mount", "umount"];
    public IReadOnlyList<string> UnreadableVolumeNames() => _records.UnreadableVolumeNames();
    public bool IsUnreadable(string volumeId) => _records.IsUnreadable(volumeId);

    /// <summary>Rescans the disks; capacity reports use the last scan, refreshed in the background when stale.</summary>
    public async Task<IReadOnlyList<DiskCandidate>> ScanAsync(CancellationToken ct)
    {
        var scan = await _inventory.ScanAsync(ct);
        _lastScan = scan;
        Interlocked.Exchange(ref _lastScanTicks, Environment.TickCount64);
        return scan;
    }

    public PoolInfo Describe()
    {
        // Every heartbeat asks; a scan probes each candidate disk with blkid, so it runs at most every 30 s (creates
        // and deletes rescan at once, and only they change what this pool hands out).
        if (Environment.TickCount64 - Interlocked.Read(ref _lastScanTicks) > 30_000)
        {
            Interlocked.Exchange(ref _lastScanTicks, Environment.TickCount64);
            _ = Task.Run(async () =>
            {
                try { await ScanAsync(CancellationToken.None); }
                catch (Exception e) { _logger.LogWarning(e, "pool {Pool}: disk scan failed", Name); }
            });
        }
        var owned = ListVolumes();
        var free = FreeDisks(_lastScan, owned);
        return new PoolInfo
        {
            Name = Name, Media = Media,
            TotalBytes = owned.Sum(v => v.CapacityBytes) + free.Sum(d => d.SizeBytes),
            FreeBytes = free.Sum(d => d.SizeBytes),
            LargestFreeBytes = free.Count == 0 ? 0 : free.Max(d => d.SizeBytes),
            SupportsBlock = true,
        };
    }

    private static List<DiskCandidate> FreeDisks(IReadOnlyList<DiskCandidate> scan, IReadOnlyList<VolumeRecord> owned) =>
        Unowned(scan, owned).Where(d => d.Blank).ToList();

    /// <summary>Disks nobody uses and no volume of ours holds (blank or not: that takes a probe).</summary>
    private static IEnumerable<DiskCandidate> Unowned(IReadOnlyList<DiskCandidate> scan, IReadOnlyList<VolumeRecord> owned)
    {
        var taken = owned.Select(v => v.Backing?.GetValueOrDefault(IdentityKey)).OfType<string>().ToHashSet(StringComparer.Ordinal);
        return scan.Where(d => d is { InUse: false, Identity: not null } && !taken.Contains(d.Identity!));
    }

    public string BackingPathOf(string volumeId) =>
        GetVolume(volumeId)?.Backing?.GetValueOrDefault(PathKey) ?? throw CsiErrors.NotFound($"volume {volumeId} not found");

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
            if (source is not null) throw CsiErrors.InvalidArgument("whole-disk volumes cannot be created from a snapshot or another volume");
            // Only the disk handed out needs blkid's word that it is blank: candidates are probed smallest first and the
            // first blank one is taken. (Probing every disk, twice per create, made a pool of 100 disks take 1.6 s per
            // create: bench-lifecycle --media disk.)
            var owned = ListVolumes();
            DiskCandidate? disk = null;
            foreach (var candidate in Unowned(await _inventory.ScanAsync(ct, probe: false), owned)
                         .Where(d => d.SizeBytes >= capacityBytes).OrderBy(d => d.SizeBytes).ThenBy(d => d.Path, StringComparer.Ordinal))
            {
                if (!await _inventory.IsBlankAsync(candidate.Path, ct)) continue;
                disk = candidate;
                break;
            }
            if (disk is null)
            {
                // What the capacity report says is free (its last full scan), for the message only.
                var free = FreeDisks(_lastScan, owned);
                throw CsiErrors.ResourceExhausted($"disk pool {Name} has no free disk of {capacityBytes} bytes or more (largest free: {(free.Count == 0 ? 0 : free.Max(d => d.SizeBytes))})");
            }
            if (limitBytes > 0 && disk.SizeBytes > limitBytes)
                throw CsiErrors.OutOfRange($"the smallest free disk that fits is {disk.SizeBytes} bytes, above limit_bytes {limitBytes}");
            var record = new VolumeRecord(volumeId, name, disk.SizeBytes, parameters, null, null, DateTimeOffset.UtcNow, [],
                new Dictionary<string, string> { [PathKey] = disk.Path, [IdentityKey] = disk.Identity! });
            await SaveVolumeAsync(record, ct);
            _logger.LogInformation("pool {Pool}: volume {VolumeId} for {Name} is disk {Disk} ({Identity}); {Requested} bytes requested, {Bytes} provided",
                Name, volumeId, name, disk.Path, disk.Identity, capacityBytes, disk.SizeBytes);
            // The capacity report needs no rescan: the disk is owned now, which takes it out of the free ones.
            return record;
        }
        finally
        {
            _allocation.Release();
        }
    }

    public async Task DeleteVolumeAsync(string volumeId, CancellationToken ct)
    {
        if (GetVolume(volumeId) is not { } record) return;
        await _allocation.WaitAsync(ct);
        try
        {
            var path = record.Backing![PathKey];
            if (CurrentIdentity(path) != record.Backing[IdentityKey])
            {
                // The disk behind the path is not ours any more (replaced, or names moved): wiping it would destroy
                // someone else's data. Our disk is gone from this path, so the volume is too.
                _logger.LogWarning("pool {Pool}: {Path} is no longer the disk of {VolumeId} ({Identity}); forgetting the volume without wiping",
                    Name, path, volumeId, record.Backing[IdentityKey]);
            }
            else
            {
                var majorMinor = DeviceNames.MajorMinor(path);
                var users = (await _mounter.ListAsync(ct)).PlacesOfDevice(DeviceNames.MountSource(path), majorMinor);
                if (users.Count > 0) throw CsiErrors.FailedPrecondition($"volume {volumeId} (disk {path}) is still mounted at {string.Join(", ", users)}");
                // Wipe first, forget last: a crash in between leaves a record, and the retry wipes again.
                await _runner.RunAsync("wipefs", WipeArguments(path), ct);
                var discard = await _runner.RunAsync("blkdiscard", DiscardArguments(path), ct, TimeSpan.FromMinutes(10), okExitCodes: [0, 1]);
                if (discard.ExitCode != 0)
                    _logger.LogInformation("pool {Pool}: {Path} does not support discard ({Error}); signatures wiped only", Name, path, discard.StandardError.Trim());
            }
            _records.DeleteVolume(volumeId);
            _logger.LogInformation("pool {Pool}: deleted volume {VolumeId}; disk {Path} is free again", Name, volumeId, path);
            // Wiped here, so blank: the capacity report learns it without probing every disk again.
            _lastScan = [.. _lastScan.Select(d => d.Path == path ? d with { Blank = true, InUse = false } : d)];
        }
        finally
        {
            _allocation.Release();
        }
    }

    public static IReadOnlyList<string> WipeArguments(string device) => ["--all", "--", device];
    public static IReadOnlyList<string> DiscardArguments(string device) => ["--", device];

    public Task<VolumeRecord> ExpandVolumeAsync(string volumeId, long capacityBytes, CancellationToken ct)
    {
        var record = GetVolume(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} not found");
        if (capacityBytes <= record.CapacityBytes) return Task.FromResult(record);
        throw CsiErrors.OutOfRange($"volume {volumeId} is a whole disk of {record.CapacityBytes} bytes; whole disks cannot grow");
    }

    public Task<string> PrepareBackingAsync(string volumeId, CancellationToken ct)
    {
        var record = GetVolume(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} not found");
        var path = record.Backing![PathKey];
        var identity = CurrentIdentity(path);
        if (identity != record.Backing[IdentityKey])
            throw CsiErrors.FailedPrecondition($"{path} is not the disk handed out for {volumeId} (expected {record.Backing[IdentityKey]}, found {identity ?? "nothing"}); refusing to use it");
        return Task.FromResult(path);
    }

    private static string? CurrentIdentity(string path) => Path.Exists(path) ? DiskIdentity.Of(DeviceNames.KernelName(path)) : null;

    public Task<SnapshotRecord> CreateSnapshotAsync(string snapshotId, string name, string sourceVolumeId, CancellationToken ct) =>
        throw CsiErrors.FailedPrecondition($"volume {sourceVolumeId} is a whole disk; whole-disk volumes cannot be snapshotted");

    public Task DeleteSnapshotAsync(string snapshotId, CancellationToken ct) => Task.CompletedTask;
}
