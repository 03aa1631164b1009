using System.Text;
using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Storage;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Pools.Pmem;

/// <summary>
/// Volumes as fsdax namespaces of one persistent-memory region, named after the id's name part. A namespace cannot
/// grow, be snapshotted or be copied; the volume exists once its record is written (namespace first, record last).
/// </summary>
public sealed class PmemPool : IMediaPool
{
    public const string MediaName = "pmem";

    // ndctl is not safe to run concurrently (pmem/ndctl#96), so every pool on the node takes turns.
    private static readonly SemaphoreSlim Ndctl = new(1, 1);
    private static readonly TimeSpan ChangeTimeout = TimeSpan.FromMinutes(5);

    private readonly string _region;
    private readonly PoolRecords _records;
    private readonly PendingOperations _pending;
    private readonly string _legacyBlockDevs;
    private const string BlockDevKey = "blockDev";
    private readonly IProcessRunner _runner;
    private readonly ILogger _logger;
    private PoolInfo _described;

    /// <param name="region">"region0" or just "0", as ndctl accepts either.</param>
    public PmemPool(string name, string region, string stateRoot, IProcessRunner runner, ILogger logger)
    {
        Name = name;
        _region = region.All(char.IsAsciiDigit) ? "region" + region : region;
        _records = new PoolRecords(stateRoot);
        _pending = new PendingOperations(stateRoot);
        // Where releases before the record's Backing kept each namespace's last block device; read for their volumes.
        _legacyBlockDevs = Path.Combine(stateRoot, "blockdevs");
        _runner = runner;
        _logger = logger;
        _described = new PoolInfo { Name = Name, Media = Media, SupportsSnapshots = false, SupportsBlock = true };
    }

    public string Name { get; }
    public string Media => MediaName;
    public bool NodeExpansionRequired => false;
    public IReadOnlyList<string> RequiredTools { get; } = ["ndctl"];
    public IReadOnlyList<string> UnreadableVolumeNames() => _records.UnreadableVolumeNames();
    public bool IsUnreadable(string volumeId) => _records.IsUnreadable(volumeId);

    /// <summary>The numbers of the last region listing (see <see cref="RefreshAsync"/>); every change refreshes them.</summary>
    public PoolInfo Describe() => Volatile.Read(ref _described).Clone();

    public VolumeRecord? GetVolume(string volumeId) => _records.GetVolume(volumeId);
    public IReadOnlyList<VolumeRecord> ListVolumes() => _records.ListVolumes();
    public IReadOnlyList<SnapshotRecord> ListSnapshots() => [];
    public Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct) => _records.SaveVolumeAsync(record, ct);

    /// <summary>The device recorded at create or at the last <see cref="PrepareBackingAsync"/>; names can change across reboots.</summary>
    public string BackingPathOf(string volumeId) =>
        RecordedBlockDev(volumeId) is { } dev
            ? "/dev/" + dev
            : throw CsiErrors.FailedPrecondition($"volume {volumeId} has no recorded pmem device");

    /// <summary>
    /// Start-up: checks the region, finishes operations a crash cut short, and reports what does not add up without
    /// touching it: namespaces named like our volumes that nobody marked, records whose namespace is gone.
    /// </summary>
    public async Task InitializeAsync(CancellationToken ct)
    {
        await Ndctl.WaitAsync(ct);
        try
        {
            var region = await ReadRegionAsync(ct);
            if (region.Type != "pmem") throw CsiErrors.FailedPrecondition($"pool {Name}: {_region} is a {region.Type} region; fsdax needs pmem");
            var namespaces = await ListNamespacesAsync(ct);
            foreach (var name in _pending.List())
            {
                if (!HasRecord(name) && namespaces.FirstOrDefault(n => n.Name == name) is { } leftover)
                {
                    _logger.LogWarning("pool {Pool}: destroying namespace {Dev} ({Name}) left by an interrupted operation", Name, leftover.Dev, name);
                    if (!await TryDestroyAsync(name)) continue;
                }
                _pending.Clear(name);
            }
            namespaces = await ListNamespacesAsync(ct);
            foreach (var ns in namespaces.Where(n => IsVolumeName(n.Name) && !HasRecord(n.Name) && !_pending.IsMarked(n.Name)))
                _logger.LogWarning("pool {Pool}: namespace {Dev} is named like a volume ({Name}) but has no record here; left alone", Name, ns.Dev, ns.Name);
            foreach (var record in ListVolumes().Where(r => namespaces.All(n => n.Name != PoolRecords.NameOf(r.VolumeId))))
                _logger.LogError("pool {Pool}: volume {VolumeId} has a record but no namespace in {Region}", Name, record.VolumeId, _region);
        }
        finally
        {
            Ndctl.Release();
        }
    }

    /// <summary>Re-reads the region so <see cref="Describe"/> sees changes made outside this pool.</summary>
    public async Task RefreshAsync(CancellationToken ct)
    {
        await Ndctl.WaitAsync(ct);
        try
        {
            await ReadRegionAsync(ct);
        }
        finally
        {
            Ndctl.Release();
        }
    }

    public async Task<VolumeRecord> CreateVolumeAsync(string volumeId, string name, long capacityBytes, long limitBytes, Dictionary<string, string> parameters,
        ContentSource? source, CancellationToken ct)
    {
        if (source is not null && (source.SnapshotId.Length > 0 || source.VolumeId.Length > 0))
            throw CsiErrors.InvalidArgument($"pool {Name}: pmem volumes cannot be made from a snapshot or another volume");
        await Ndctl.WaitAsync(ct);
        try
        {
            if (GetVolume(volumeId) is { } existing) return existing;
            var nsName = PoolRecords.NameOf(volumeId);
            var region = await ReadRegionAsync(ct);
            await ClearLeftoverAsync(nsName, ct);
            var unit = PmemSizing.UnitOf(region.Align);
            if (PmemSizing.RawSizeFor(capacityBytes, unit) > region.LargestFreeBytes)
                throw CsiErrors.ResourceExhausted($"pool {Name}: the largest free extent of {_region} is {region.LargestFreeBytes} bytes, {capacityBytes} requested");
            await _pending.MarkAsync(nsName, ct);
            try
            {
                var created = await MakeNamespaceAsync(nsName, capacityBytes, unit, region.LargestFreeBytes, ct);
                if (limitBytes > 0 && created.SizeBytes > limitBytes)
                    throw CsiErrors.OutOfRange($"the namespace for {capacityBytes} bytes came out at {created.SizeBytes} (fsdax alignment), above the limit of {limitBytes}");
                await RunAsync(NdctlCommands.WipeSignatures("/dev/" + created.BlockDev), ct);
                var record = new VolumeRecord(volumeId, name, created.SizeBytes, parameters, null, null, DateTimeOffset.UtcNow, [],
                    new() { [BlockDevKey] = created.BlockDev });
                await SaveVolumeAsync(record, ct);
                _pending.Clear(nsName);
                _logger.LogInformation("pool {Pool}: created namespace {Dev} (/dev/{BlockDev}, {Bytes} bytes) for {Name}", Name, created.Dev,
                    created.BlockDev, created.SizeBytes, name);
                return record;
            }
            catch when (GetVolume(volumeId) is null)
            {
                await TryDestroyAsync(nsName);
                throw;
            }
            finally
            {
                await TryReadRegionAsync();
            }
        }
        finally
        {
            Ndctl.Release();
        }
    }

    /// <summary>
    /// Creates the namespace and checks its usable size covers the request. The first size assumes the 2 MiB fsdax
    /// alignment; should the namespace report a larger one and come out short, it is made once more with that one.
    /// </summary>
    private async Task<PmemNamespace> MakeNamespaceAsync(string nsName, long capacityBytes, long unit, long largestFree, CancellationToken ct)
    {
        var raw = PmemSizing.RawSizeFor(capacityBytes, unit);
        for (var attempt = 0; ; attempt++)
        {
            if (raw > largestFree)
                throw CsiErrors.ResourceExhausted($"pool {Name}: {capacityBytes} bytes need a {raw}-byte namespace, the largest free extent of {_region} is {largestFree}");
            await RunAsync(NdctlCommands.CreateNamespace(_region, raw, nsName), ct);
            var created = (await ListNamespacesAsync(ct)).FirstOrDefault(n => n.Name == nsName)
                          ?? throw CsiErrors.Internal($"namespace {nsName} missing right after create-namespace");
            if (created.SizeBytes >= capacityBytes && created.BlockDev.Length > 0) return created;
            if (created.BlockDev.Length == 0 || attempt > 0)
                throw CsiErrors.Internal($"namespace {created.Dev} for {capacityBytes} bytes came out at {created.SizeBytes} bytes, device '{created.BlockDev}'");
            _logger.LogWarning("pool {Pool}: namespace {Dev} came out at {Bytes} bytes (align {Align}), short of {Wanted}; making it again", Name,
                created.Dev, created.SizeBytes, created.Align, capacityBytes);
            await RunAsync(NdctlCommands.DestroyNamespace(created.Dev), ct);
            raw = Math.Max(PmemSizing.RawSizeFor(capacityBytes, unit, Math.Max(created.Align, PmemSizing.DefaultFsdaxAlign)),
                raw + PmemSizing.AlignUp(capacityBytes - created.SizeBytes, unit));
        }
    }

    public async Task DeleteVolumeAsync(string volumeId, CancellationToken ct)
    {
        var nsName = PoolRecords.NameOf(volumeId);
        await Ndctl.WaitAsync(ct);
        try
        {
            var record = GetVolume(volumeId);
            var existing = (await ListNamespacesAsync(ct)).FirstOrDefault(n => n.Name == nsName);
            if (record is null && existing is null)
            {
                _pending.Clear(nsName);
                return;
            }
            if (record is { Publications.Count: > 0 })
                throw CsiErrors.FailedPrecondition($"volume {volumeId} is still published to {string.Join(", ", record.Publications.Select(p => p.NodeId))}");
            // Record first: a crash after this leaves a marked namespace without a record, which start-up destroys.
            // ndctl itself refuses to destroy a namespace that is mounted.
            await _pending.MarkAsync(nsName, ct);
            _records.DeleteVolume(volumeId);
            if (existing is not null) await RunAsync(NdctlCommands.DestroyNamespace(existing.Dev), ct);
            AtomicFile.Delete(Path.Combine(_legacyBlockDevs, nsName));
            _pending.Clear(nsName);
            _logger.LogInformation("pool {Pool}: deleted volume {VolumeId} (namespace {Dev})", Name, volumeId, existing?.Dev);
            await TryReadRegionAsync();
        }
        finally
        {
            Ndctl.Release();
        }
    }

    public Task<VolumeRecord> ExpandVolumeAsync(string volumeId, long capacityBytes, CancellationToken ct)
    {
        var record = GetVolume(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} not found");
        if (capacityBytes > record.CapacityBytes)
            throw CsiErrors.OutOfRange($"pmem namespaces cannot grow: {volumeId} has {record.CapacityBytes} bytes, {capacityBytes} requested");
        return Task.FromResult(record);
    }

    /// <summary>Finds the namespace by name again (device names follow probe order, which a reboot may change).</summary>
    public async Task<string> PrepareBackingAsync(string volumeId, CancellationToken ct)
    {
        if (GetVolume(volumeId) is null) throw CsiErrors.NotFound($"volume {volumeId} not found");
        var nsName = PoolRecords.NameOf(volumeId);
        // Callers hold the volume's slot: nothing else rewrites its record meanwhile.
        await Ndctl.WaitAsync(ct);
        try
        {
            var ns = (await ListNamespacesAsync(ct)).FirstOrDefault(n => n.Name == nsName)
                     ?? throw CsiErrors.FailedPrecondition($"volume {volumeId}: no namespace named {nsName} in {_region}");
            if (ns.Mode != "fsdax") throw CsiErrors.FailedPrecondition($"volume {volumeId}: namespace {ns.Dev} is in {ns.Mode} mode, not fsdax");
            if (!ns.Enabled || ns.BlockDev.Length == 0) throw CsiErrors.FailedPrecondition($"volume {volumeId}: namespace {ns.Dev} is disabled");
            if (RecordedBlockDev(volumeId) is var old && old != ns.BlockDev)
            {
                _logger.LogWarning("pool {Pool}: volume {VolumeId} is now /dev/{BlockDev} (was /dev/{Old})", Name, volumeId, ns.BlockDev, old ?? "unknown");
                var record = GetVolume(volumeId)!;
                await SaveVolumeAsync(record with { Backing = new(record.Backing ?? []) { [BlockDevKey] = ns.BlockDev } }, ct);
                AtomicFile.Delete(Path.Combine(_legacyBlockDevs, nsName));
            }
            return "/dev/" + ns.BlockDev;
        }
        finally
        {
            Ndctl.Release();
        }
    }

    public Task<SnapshotRecord> CreateSnapshotAsync(string snapshotId, string name, string sourceVolumeId, CancellationToken ct) =>
        throw CsiErrors.FailedPrecondition($"pool {Name}: pmem namespaces cannot be snapshotted");

    // Nothing here was ever a snapshot, so deleting one is already done.
    public Task DeleteSnapshotAsync(string snapshotId, CancellationToken ct) => Task.CompletedTask;

    /// <summary>
    /// A namespace of this name without a record. Marked: the remains of an interrupted create or delete, never
    /// handed out, so it is destroyed and made afresh. Unmarked: possibly a volume whose record was lost; refuse.
    /// </summary>
    private async Task ClearLeftoverAsync(string nsName, CancellationToken ct)
    {
        if ((await ListNamespacesAsync(ct)).FirstOrDefault(n => n.Name == nsName) is not { } leftover) return;
        if (!_pending.IsMarked(nsName))
            throw CsiErrors.FailedPrecondition($"namespace {leftover.Dev} is already named {nsName} without a record of this pool; not touching it");
        _logger.LogWarning("pool {Pool}: destroying namespace {Dev} left by an interrupted operation before making it again", Name, leftover.Dev);
        await RunAsync(NdctlCommands.DestroyNamespace(leftover.Dev), ct);
    }

    private async Task<bool> TryDestroyAsync(string nsName)
    {
        try
        {
            // Cleanup runs to the end even when the caller gave up.
            if ((await ListNamespacesAsync(CancellationToken.None)).FirstOrDefault(n => n.Name == nsName) is { } ns)
                await RunAsync(NdctlCommands.DestroyNamespace(ns.Dev), CancellationToken.None);
            AtomicFile.Delete(Path.Combine(_legacyBlockDevs, nsName));
            _pending.Clear(nsName);
            return true;
        }
        catch (Exception e)
        {
            _logger.LogError(e, "pool {Pool}: could not destroy namespace {Name}; start-up will retry", Name, nsName);
            return false;
        }
    }

    private bool HasRecord(string name) => File.Exists(Path.Combine(_records.VolumesDir, name + ".json"));

    private static bool IsVolumeName(string name) => name.Length == 25 && name[0] == 'v' && name.Skip(1).All(char.IsAsciiHexDigitLower);

    /// <summary>The block device the namespace had when last seen (in its record; a legacy file for volumes made before).</summary>
    private string? RecordedBlockDev(string volumeId)
    {
        if (GetVolume(volumeId)?.Backing?.GetValueOrDefault(BlockDevKey) is { } dev) return dev;
        var legacy = Path.Combine(_legacyBlockDevs, PoolRecords.NameOf(volumeId));
        return File.Exists(legacy) ? File.ReadAllText(legacy).Trim() : null;
    }

    private Task RunAsync((string Program, IReadOnlyList<string> Arguments) command, CancellationToken ct) =>
        _runner.RunAsync(command.Program, command.Arguments, ct, ChangeTimeout);

    private async Task<IReadOnlyList<PmemNamespace>> ListNamespacesAsync(CancellationToken ct)
    {
        var (program, args) = NdctlCommands.ListNamespaces(_region);
        return NdctlParser.ParseNamespaces((await _runner.RunAsync(program, args, ct)).StandardOutput);
    }

    private async Task<PmemRegion> ReadRegionAsync(CancellationToken ct)
    {
        var (program, args) = NdctlCommands.ListRegions();
        var region = NdctlParser.ParseRegions((await _runner.RunAsync(program, args, ct)).StandardOutput).FirstOrDefault(r => r.Dev == _region)
                     ?? throw CsiErrors.FailedPrecondition($"pool {Name}: pmem region {_region} not found or disabled");
        Volatile.Write(ref _described, new PoolInfo
        {
            Name = Name, Media = Media, TotalBytes = region.SizeBytes, FreeBytes = region.AvailableBytes, LargestFreeBytes = region.LargestFreeBytes,
            SupportsSnapshots = false, SupportsBlock = true,
        });
        return region;
    }

    private async Task TryReadRegionAsync()
    {
        try
        {
            await ReadRegionAsync(CancellationToken.None);
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "pool {Pool}: could not re-read region {Region}; capacity may be stale", Name, _region);
        }
    }
}
