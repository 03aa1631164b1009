using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Pools.Lvm;

/// <summary>
/// Volumes as logical volumes of one volume group, thick or thin (from one thin pool). An LV is named after the id's
/// name part and tagged <see cref="LvmCommands.VolumeTag"/>; the volume exists once its record is written (LV first,
/// record last). Snapshots and clones are thin snapshots, so they need the thin pool.
/// </summary>
public sealed class LvmPool : IMediaPool
{
    /// <summary>Volume parameter: "thin" or "thick"; default thin when the pool has a thin pool.</summary>
    public const string TypeParameter = "lvmType";
    public const string MediaName = "lvm";

    // lvm waits for the VG lock held by any other lvm command on the node; leave room for that.
    private static readonly TimeSpan ChangeTimeout = TimeSpan.FromMinutes(5);

    private readonly string _vg;
    private readonly string? _thinPool;
    private readonly PoolRecords _records;
    private readonly PendingOperations _pending;
    private readonly IProcessRunner _runner;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _changes = new(1, 1);
    private PoolInfo _described;

    public LvmPool(string name, string volumeGroup, string? thinPool, string stateRoot, IProcessRunner runner, ILogger logger)
    {
        Name = name;
        _vg = volumeGroup;
        _thinPool = string.IsNullOrEmpty(thinPool) ? null : thinPool;
        _records = new PoolRecords(stateRoot);
        _pending = new PendingOperations(stateRoot);
        _runner = runner;
        _logger = logger;
        _described = new PoolInfo { Name = Name, Media = Media, SupportsSnapshots = _thinPool is not null, SupportsBlock = true };
    }

    public string Name { get; }
    public string Media => MediaName;
    public bool NodeExpansionRequired => true;
    public IReadOnlyList<string> RequiredTools { get; } = ["lvcreate", "lvs", "vgs", "lvchange", "lvextend", "lvremove"];
    public IReadOnlyList<string> UnreadableVolumeNames() => _records.UnreadableVolumeNames();
    public bool IsUnreadable(string volumeId) => _records.IsUnreadable(volumeId);

    /// <summary>The numbers of the last report (see <see cref="RefreshAsync"/>); every change refreshes them.</summary>
    public PoolInfo Describe() => Volatile.Read(ref _described).Clone();

    public string BackingPathOf(string volumeId) => $"/dev/{_vg}/{PoolRecords.NameOf(volumeId)}";

    /// <summary>
    /// An inactive LV has no device node until its next stage activates it, which is not a fault; a missing LV is
    /// reported by that stage (PrepareBackingAsync), which reads lvs rather than a path.
    /// </summary>
    public string? BackingProblem(VolumeRecord record) => null;

    public VolumeRecord? GetVolume(string volumeId) => _records.GetVolume(volumeId);
    public IReadOnlyList<VolumeRecord> ListVolumes() => _records.ListVolumes();
    public IReadOnlyList<SnapshotRecord> ListSnapshots() => _records.ListSnapshots();
    public Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct) => _records.SaveVolumeAsync(record, ct);

    /// <summary>
    /// Start-up: checks the VG (and thin pool) exist, finishes operations a crash cut short, and reports what does not
    /// add up without touching it: tagged LVs nobody marked, records whose LV is gone.
    /// </summary>
    public async Task InitializeAsync(CancellationToken ct)
    {
        await _changes.WaitAsync(ct);
        try
        {
            var state = await ReadAsync(ct);
            foreach (var name in _pending.List())
            {
                if (HasRecord(name))
                {
                    // The create got as far as its record, or the delete not as far as dropping it: the volume is whole.
                    _pending.Clear(name);
                    continue;
                }
                if (state.Find(name) is { } leftover && IsOurs(leftover))
                {
                    _logger.LogWarning("pool {Pool}: removing LV {Vg}/{Lv} left by an interrupted operation", Name, _vg, name);
                    if (!await TryRemoveAsync(name)) continue;
                }
                _pending.Clear(name);
            }
            state = await ReadAsync(ct);
            foreach (var lv in state.Lvs.Where(l => IsOurs(l) && !HasRecord(l.Name) && !_pending.IsMarked(l.Name)))
                _logger.LogWarning("pool {Pool}: LV {Vg}/{Lv} is tagged by this driver but has no record here; left alone", Name, _vg, lv.Name);
            foreach (var record in ListVolumes().Where(r => state.Find(PoolRecords.NameOf(r.VolumeId)) is null))
                _logger.LogError("pool {Pool}: volume {VolumeId} has a record but its LV {Vg}/{Lv} is missing", Name, record.VolumeId, _vg,
                    PoolRecords.NameOf(record.VolumeId));
            foreach (var record in ListSnapshots().Where(r => state.Find(PoolRecords.NameOf(r.SnapshotId)) is null))
                _logger.LogError("pool {Pool}: snapshot {SnapshotId} has a record but its LV is missing", Name, record.SnapshotId);
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary>Re-reads the VG so <see cref="Describe"/> sees changes made outside this pool.</summary>
    public async Task RefreshAsync(CancellationToken ct) => await ReadAsync(ct);

    public async Task<VolumeRecord> CreateVolumeAsync(string volumeId, string name, long capacityBytes, long limitBytes, Dictionary<string, string> parameters,
        ContentSource? source, CancellationToken ct)
    {
        await _changes.WaitAsync(ct);
        try
        {
            if (GetVolume(volumeId) is { } existing) return existing;
            var thin = WantsThin(parameters, source);
            var origin = SourceOf(source);
            if (origin is not null && capacityBytes < origin.Value.Size)
                throw CsiErrors.OutOfRange($"requested capacity {capacityBytes} is smaller than the source ({origin.Value.Size} bytes)");

            var lv = PoolRecords.NameOf(volumeId);
            var state = await ReadAsync(ct);
            if (origin is { } o && state.Find(o.Lv) is not { IsThin: true })
                throw CsiErrors.FailedPrecondition($"cannot copy {o.Id}: snapshots and clones need a thin LV in the thin pool");
            state = await ClearLeftoverAsync(state, lv, ct);
            var free = thin ? ThinFree(state) : state.Vg.FreeBytes;
            if (free < capacityBytes)
                throw CsiErrors.ResourceExhausted($"pool {Name} has {free} bytes free for a {(thin ? "thin" : "thick")} LV, {capacityBytes} requested");

            await _pending.MarkAsync(lv, ct);
            try
            {
                var size = await MakeVolumeLvAsync(lv, thin, capacityBytes, origin, ct);
                if (limitBytes > 0 && size > limitBytes)
                    throw CsiErrors.OutOfRange($"LVM rounds {capacityBytes} bytes up to {size} (whole extents), above the limit of {limitBytes}");
                var record = VolumeRecord.New(volumeId, name, size, parameters, source);
                await SaveVolumeAsync(record, ct);
                _pending.Clear(lv);
                _logger.LogInformation("pool {Pool}: created {Kind} LV {Vg}/{Lv} ({Bytes} bytes) for {Name}", Name, thin ? "thin" : "thick", _vg, lv, size, name);
                return record;
            }
            catch when (GetVolume(volumeId) is null)
            {
                await TryRemoveAsync(lv);
                throw;
            }
            finally
            {
                await TryReadAsync();
            }
        }
        finally
        {
            _changes.Release();
        }
    }

    private async Task<long> MakeVolumeLvAsync(string lv, bool thin, long capacityBytes, (string Id, string Lv, long Size)? origin, CancellationToken ct)
    {
        if (origin is { } o)
        {
            await RunAsync(LvmCommands.VolumeFromThin(_vg, o.Lv, lv), ct);
            if (capacityBytes > o.Size) await RunAsync(LvmCommands.Extend(_vg, lv, capacityBytes), ct);
        }
        else
        {
            await RunAsync(thin ? LvmCommands.CreateThin(_vg, _thinPool!, lv, capacityBytes) : LvmCommands.CreateThick(_vg, lv, capacityBytes), ct);
        }
        // The size LVM really gave (rounded up to extents) is what the volume has.
        var created = (await ReadAsync(ct)).Find(lv) ?? throw CsiErrors.Internal($"LV {_vg}/{lv} missing right after lvcreate");
        return created.SizeBytes;
    }

    private bool WantsThin(Dictionary<string, string> parameters, ContentSource? source)
    {
        parameters.TryGetValue(TypeParameter, out var type);
        var copies = source is not null && (source.SnapshotId.Length > 0 || source.VolumeId.Length > 0);
        switch (type)
        {
            case null or "":
                if (copies && _thinPool is null) throw CsiErrors.FailedPrecondition($"pool {Name}: snapshots and clones need a thin pool");
                return _thinPool is not null;
            case "thin":
                return _thinPool is not null ? true : throw CsiErrors.InvalidArgument($"{TypeParameter}=thin: pool {Name} has no thin pool");
            case "thick":
                return copies ? throw CsiErrors.InvalidArgument($"{TypeParameter}=thick: a volume made from a snapshot or volume is a thin LV") : false;
            default:
                throw CsiErrors.InvalidArgument($"{TypeParameter} must be thin or thick, not '{StorageId.Printable(type)}'");
        }
    }

    private (string Id, string Lv, long Size)? SourceOf(ContentSource? source)
    {
        if (source is null) return null;
        if (source.SnapshotId.Length > 0)
        {
            var snap = _records.GetSnapshot(source.SnapshotId) ?? throw CsiErrors.NotFound($"snapshot {source.SnapshotId} not found");
            return (source.SnapshotId, PoolRecords.NameOf(source.SnapshotId), snap.SizeBytes);
        }
        if (source.VolumeId.Length > 0)
        {
            var volume = GetVolume(source.VolumeId) ?? throw CsiErrors.NotFound($"source volume {source.VolumeId} not found");
            return (source.VolumeId, PoolRecords.NameOf(source.VolumeId), volume.CapacityBytes);
        }
        return null;
    }

    public async Task DeleteVolumeAsync(string volumeId, CancellationToken ct)
    {
        var lv = PoolRecords.NameOf(volumeId);
        await _changes.WaitAsync(ct);
        try
        {
            var record = GetVolume(volumeId);
            var existing = (await ReadAsync(ct)).Find(lv);
            if (record is null && existing is null)
            {
                _pending.Clear(lv);
                return;
            }
            if (record is { Publications.Count: > 0 })
                throw CsiErrors.FailedPrecondition($"volume {volumeId} is still published to {string.Join(", ", record.Publications.Select(p => p.NodeId))}");
            if (existing is not null && !IsOurs(existing))
                throw CsiErrors.FailedPrecondition($"LV {_vg}/{lv} was not made by this driver; not removing it");
            if (existing is { IsOpen: true })
                throw CsiErrors.FailedPrecondition($"volume {volumeId}: LV {_vg}/{lv} is open (mounted or attached)");
            // Record first: a crash after this leaves a marked LV without a record, which start-up removes.
            await _pending.MarkAsync(lv, ct);
            _records.DeleteVolume(volumeId);
            if (existing is not null) await RunAsync(LvmCommands.Remove(_vg, lv), ct);
            _pending.Clear(lv);
            _logger.LogInformation("pool {Pool}: deleted volume {VolumeId} (LV {Vg}/{Lv})", Name, volumeId, _vg, lv);
        }
        finally
        {
            await TryReadAsync();
            _changes.Release();
        }
    }

    public async Task<VolumeRecord> ExpandVolumeAsync(string volumeId, long capacityBytes, CancellationToken ct)
    {
        await _changes.WaitAsync(ct);
        try
        {
            var record = GetVolume(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} not found");
            if (capacityBytes <= record.CapacityBytes) return record;
            var lv = PoolRecords.NameOf(volumeId);
            var state = await ReadAsync(ct);
            var current = state.Find(lv) ?? throw CsiErrors.FailedPrecondition($"volume {volumeId}: LV {_vg}/{lv} is missing");
            var growth = capacityBytes - current.SizeBytes;
            var free = current.IsThin ? ThinFree(state) : state.Vg.FreeBytes;
            if (growth > 0 && free < growth)
                throw CsiErrors.ResourceExhausted($"pool {Name} cannot grow {volumeId} by {growth} bytes ({free} free)");
            if (growth > 0) await RunAsync(LvmCommands.Extend(_vg, lv, capacityBytes), ct);
            var size = (await ReadAsync(ct)).Find(lv)?.SizeBytes ?? throw CsiErrors.Internal($"LV {_vg}/{lv} vanished while growing");
            var grown = record with { CapacityBytes = size };
            await SaveVolumeAsync(grown, ct);
            _logger.LogInformation("pool {Pool}: grew {VolumeId} to {Bytes} bytes", Name, volumeId, size);
            return grown;
        }
        finally
        {
            _changes.Release();
        }
    }

    public async Task<string> PrepareBackingAsync(string volumeId, CancellationToken ct)
    {
        if (GetVolume(volumeId) is null) throw CsiErrors.NotFound($"volume {volumeId} not found");
        var lv = PoolRecords.NameOf(volumeId);
        var existing = (await ReadAsync(ct)).Find(lv);
        if (existing is null || !IsOurs(existing))
            throw CsiErrors.FailedPrecondition($"volume {volumeId}: LV {_vg}/{lv} is missing or was not made by this driver");
        // Activation is idempotent; after a reboot thin snapshots and clones (activation-skip) are not active.
        await RunAsync(LvmCommands.Activate(_vg, lv), ct);
        return BackingPathOf(volumeId);
    }

    /// <summary>
    /// A thin snapshot. lvm suspends the origin while it takes it, and device-mapper freezes a filesystem mounted on it
    /// during the suspend, so the snapshot is consistent without a quiesce of our own.
    /// </summary>
    public async Task<SnapshotRecord> CreateSnapshotAsync(string snapshotId, string name, string sourceVolumeId, CancellationToken ct)
    {
        await _changes.WaitAsync(ct);
        try
        {
            if (_records.GetSnapshot(snapshotId) is { } existing) return existing;
            _ = GetVolume(sourceVolumeId) ?? throw CsiErrors.NotFound($"source volume {sourceVolumeId} not found");
            if (_thinPool is null) throw CsiErrors.FailedPrecondition($"pool {Name}: snapshots need a thin pool");
            var source = PoolRecords.NameOf(sourceVolumeId);
            var snap = PoolRecords.NameOf(snapshotId);
            var state = await ReadAsync(ct);
            var origin = state.Find(source) ?? throw CsiErrors.FailedPrecondition($"volume {sourceVolumeId}: LV {_vg}/{source} is missing");
            if (!origin.IsThin) throw CsiErrors.FailedPrecondition($"volume {sourceVolumeId} is a thick LV: snapshots need a thin pool");
            state = await ClearLeftoverAsync(state, snap, ct);
            var free = ThinFree(state);
            if (free < origin.SizeBytes)
                throw CsiErrors.ResourceExhausted($"pool {Name} has {free} bytes free, a snapshot of {sourceVolumeId} needs {origin.SizeBytes}");

            await _pending.MarkAsync(snap, ct);
            try
            {
                await RunAsync(LvmCommands.Snapshot(_vg, source, snap), ct);
                var record = new SnapshotRecord(snapshotId, name, sourceVolumeId, origin.SizeBytes, DateTimeOffset.UtcNow);
                await _records.SaveSnapshotAsync(record, ct);
                _pending.Clear(snap);
                _logger.LogInformation("pool {Pool}: snapshot {SnapshotId} of {VolumeId} (LV {Vg}/{Lv})", Name, snapshotId, sourceVolumeId, _vg, snap);
                return record;
            }
            catch when (_records.GetSnapshot(snapshotId) is null)
            {
                await TryRemoveAsync(snap);
                throw;
            }
            finally
            {
                await TryReadAsync();
            }
        }
        finally
        {
            _changes.Release();
        }
    }

    public async Task DeleteSnapshotAsync(string snapshotId, CancellationToken ct)
    {
        var snap = PoolRecords.NameOf(snapshotId);
        await _changes.WaitAsync(ct);
        try
        {
            var existing = (await ReadAsync(ct)).Find(snap);
            if (existing is not null && !IsOurs(existing))
                throw CsiErrors.FailedPrecondition($"LV {_vg}/{snap} was not made by this driver; not removing it");
            await _pending.MarkAsync(snap, ct);
            _records.DeleteSnapshot(snapshotId);
            // Thin snapshots share no state with volumes made from them: those stay.
            if (existing is not null) await RunAsync(LvmCommands.Remove(_vg, snap), ct);
            _pending.Clear(snap);
        }
        finally
        {
            await TryReadAsync();
            _changes.Release();
        }
    }

    /// <summary>
    /// An LV of this name without a record. Marked: the remains of an interrupted create or delete, never handed
    /// out, so it is removed and made afresh rather than adopted (it may lack the extend, or come from another source
    /// or type than this request). Unmarked: it may be a volume whose record was lost; refuse rather than guess.
    /// </summary>
    private async Task<VgState> ClearLeftoverAsync(VgState state, string lv, CancellationToken ct)
    {
        if (state.Find(lv) is not { } leftover) return state;
        if (!IsOurs(leftover) || !_pending.IsMarked(lv))
            throw CsiErrors.FailedPrecondition($"LV {_vg}/{lv} already exists without a record of this pool; not touching it");
        _logger.LogWarning("pool {Pool}: removing LV {Vg}/{Lv} left by an interrupted operation before making it again", Name, _vg, lv);
        await RunAsync(LvmCommands.Remove(_vg, lv), ct);
        return await ReadAsync(ct);
    }

    /// <summary>Thin pool size minus the virtual size of every thin LV in it: thin LVs are never overcommitted.</summary>
    private long ThinFree(VgState state)
    {
        var pool = state.ThinPool ?? throw CsiErrors.FailedPrecondition($"pool {Name}: thin pool {_vg}/{_thinPool} is missing");
        var allocated = state.Lvs.Where(l => l.IsThin && l.PoolLv == _thinPool).Sum(l => l.SizeBytes);
        return Math.Max(0, pool.SizeBytes - allocated);
    }

    private static bool IsOurs(LogicalVolume lv) => lv.HasTag(LvmCommands.VolumeTag) || lv.HasTag(LvmCommands.SnapshotTag);

    private bool HasRecord(string name) =>
        File.Exists(Path.Combine(name.StartsWith('v') ? _records.VolumesDir : _records.SnapshotsDir, name + ".json"));

    private async Task<bool> TryRemoveAsync(string lv)
    {
        try
        {
            // Cleanup runs to the end even when the caller gave up.
            var state = await ReadAsync(CancellationToken.None);
            if (state.Find(lv) is { } existing && IsOurs(existing)) await RunAsync(LvmCommands.Remove(_vg, lv), CancellationToken.None);
            _pending.Clear(lv);
            return true;
        }
        catch (Exception e)
        {
            _logger.LogError(e, "pool {Pool}: could not remove LV {Vg}/{Lv}; start-up will retry", Name, _vg, lv);
            return false;
        }
    }

    private async Task RunAsync((string Program, IReadOnlyList<string> Arguments) command, CancellationToken ct)
    {
        try
        {
            await _runner.RunAsync(command.Program, command.Arguments, ct, ChangeTimeout);
        }
        catch (CommandFailedException e) when (e.StandardError.Contains("insufficient free space", StringComparison.OrdinalIgnoreCase))
        {
            throw CsiErrors.ResourceExhausted($"pool {Name}: {e.StandardError.Trim()}");
        }
    }

    private async Task<VgState> ReadAsync(CancellationToken ct)
    {
        var (vgsProgram, vgsArgs) = LvmCommands.ReportVolumeGroup(_vg);
        var vg = LvmReport.ParseVolumeGroups((await _runner.RunAsync(vgsProgram, vgsArgs, ct)).StandardOutput).FirstOrDefault(v => v.Name == _vg)
                 ?? throw CsiErrors.FailedPrecondition($"pool {Name}: volume group {_vg} not found");
        var (lvsProgram, lvsArgs) = LvmCommands.ReportLogicalVolumes(_vg);
        var lvs = LvmReport.ParseLogicalVolumes((await _runner.RunAsync(lvsProgram, lvsArgs, ct)).StandardOutput).Where(l => l.VolumeGroup == _vg).ToArray();
        var state = new VgState(vg, lvs, _thinPool is null ? null : lvs.FirstOrDefault(l => l.Name == _thinPool && l.IsThinPool));
        if (_thinPool is not null && state.ThinPool is null) throw CsiErrors.FailedPrecondition($"pool {Name}: thin pool {_vg}/{_thinPool} not found");
        Volatile.Write(ref _described, Summarize(state));
        return state;
    }

    private async Task TryReadAsync()
    {
        try
        {
            await ReadAsync(CancellationToken.None);
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "pool {Pool}: could not re-read volume group {Vg}; capacity may be stale", Name, _vg);
        }
    }

    private PoolInfo Summarize(VgState state)
    {
        long total, free;
        if (_thinPool is null)
        {
            (total, free) = (state.Vg.SizeBytes, state.Vg.FreeBytes);
        }
        else
        {
            (total, free) = (state.ThinPool!.SizeBytes, ThinFree(state));
        }
        return new PoolInfo
        {
            Name = Name, Media = Media, TotalBytes = total, FreeBytes = free, LargestFreeBytes = free,
            SupportsSnapshots = _thinPool is not null, SupportsBlock = true,
        };
    }

    private sealed record VgState(VolumeGroupReport Vg, IReadOnlyList<LogicalVolume> Lvs, LogicalVolume? ThinPool)
    {
        public LogicalVolume? Find(string name) => Lvs.FirstOrDefault(l => l.Name == name);
    }
}
