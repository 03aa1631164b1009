using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Diagnostics;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Storage;
using SolarCsi.Node.Agent;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Pools;

/// <summary>
/// Holds write I/O of a volume still while its point in time is cut; returns the release, or null when nothing on this
/// node writes to it (not staged here), so there is nothing to hold.
/// </summary>
public delegate Task<IAsyncDisposable?> Quiesce(string volumeId, CancellationToken ct);

/// <summary>
/// Volumes as sparse image files under the state directory. A volume exists once its record is written
/// (image first, record last), so a crash mid-create leaves only an orphan image that start-up removes.
/// </summary>
public sealed class FilePool : IMediaPool
{
    private readonly PoolRecords _records;
    private readonly string _volumes, _snapshots;
    private readonly CapacityLedger _ledger;
    private readonly IProcessRunner _runner;
    private readonly LoopDevices _loops;
    private readonly Quiesce _quiesce;
    private readonly ILogger _logger;

    /// <param name="requiredTools">what the media needs besides the image files: loop devices and mounts where the
    /// node attaches its own volumes (file), the NBD server where other nodes attach them (nbd).</param>
    /// <param name="ledger">the capacity of the filesystem <paramref name="root"/> is on, shared with the other pools there.</param>
    public FilePool(string media, string name, string root, CapacityLedger ledger, IReadOnlyList<string> requiredTools, IProcessRunner runner,
        LoopDevices loops, Quiesce quiesce, ILogger logger)
    {
        Media = media;
        RequiredTools = ["cp", .. requiredTools];
        Name = name;
        _records = new PoolRecords(root);
        _volumes = _records.VolumesDir;
        _snapshots = _records.SnapshotsDir;
        _ledger = ledger;
        ledger.Register(() => ListVolumes().Select(v => new CapacityLedger.Promise(BackingPathOf(v.VolumeId), v.CapacityBytes))
            .Concat(ListSnapshots().Select(sn => new CapacityLedger.Promise(SnapshotImageOf(sn.SnapshotId), sn.SizeBytes))));
        _runner = runner;
        _loops = loops;
        _quiesce = quiesce;
        _logger = logger;
        RemoveOrphans();
    }

    public string Name { get; }
    /// <summary>"file" for local volumes, "nbd" for the same images exported to other nodes.</summary>
    public string Media { get; }

    public PoolInfo Describe()
    {
        var (total, free) = _ledger.Describe();
        return new PoolInfo
        {
            Name = Name, Media = Media, TotalBytes = total, FreeBytes = free, LargestFreeBytes = free, SupportsSnapshots = true, SupportsBlock = true,
        };
    }

    public string BackingPathOf(string volumeId) => Path.Combine(_volumes, NameOf(volumeId) + ".img");
    private string SnapshotImageOf(string snapshotId) => Path.Combine(_snapshots, NameOf(snapshotId) + ".img");
    private static string NameOf(string id) => PoolRecords.NameOf(id);

    public Task<string> PrepareBackingAsync(string volumeId, CancellationToken ct) => Task.FromResult(BackingPathOf(volumeId));

    public VolumeRecord? GetVolume(string volumeId) => _records.GetVolume(volumeId);
    public IReadOnlyList<VolumeRecord> ListVolumes() => _records.ListVolumes();
    public IReadOnlyList<SnapshotRecord> ListSnapshots() => _records.ListSnapshots();

    public bool NodeExpansionRequired => true;
    public IReadOnlyList<string> RequiredTools { get; }
    public IReadOnlyList<string> UnreadableVolumeNames() => _records.UnreadableVolumeNames();
    public bool IsUnreadable(string volumeId) => _records.IsUnreadable(volumeId);

    public async Task<VolumeRecord> CreateVolumeAsync(string volumeId, string name, long capacityBytes, long limitBytes, Dictionary<string, string> parameters,
        ContentSource? source, CancellationToken ct)
    {
        // No pool-wide lock: the agent holds this volume's slot, and the ledger's reservation is what keeps two creates
        // (in this pool or the other on the same filesystem) from promising the same bytes, so a long clone does not
        // hold up every other create.
        if (GetVolume(volumeId) is { } existing) return existing;
        var sourceImage = SourceImageOf(source, out var sourceSize);
        if (sourceImage is not null && capacityBytes < sourceSize)
            throw CsiErrors.OutOfRange($"requested capacity {capacityBytes} is smaller than the source ({sourceSize} bytes)");
        using var reservation = _ledger.Reserve(BackingPathOf(volumeId), capacityBytes, Name);

        var image = BackingPathOf(volumeId);
        if (File.Exists(image))
            return await AdoptAsync(volumeId, name, capacityBytes, parameters, source, image, ct);
        var temp = image + ".creating";
        try
        {
            if (source?.VolumeId is { Length: > 0 } sourceVolume)
                await CutPointInTimeAsync(sourceVolume, sourceImage!, temp, "cloned", ct);
            else if (sourceImage is not null && !Reflink.TryClone(sourceImage, temp))
                await CopySparseAsync(sourceImage, temp, ct); // a snapshot's image never changes: no hold needed
            await using (var stream = new FileStream(temp, new FileStreamOptions
                         {
                             Mode = FileMode.OpenOrCreate, Access = FileAccess.Write,
                             UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                         }))
            {
                stream.SetLength(capacityBytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, image, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        var record = VolumeRecord.New(volumeId, name, capacityBytes, parameters, source);
        await SaveVolumeAsync(record, ct);
        _logger.LogInformation("pool {Pool}: created volume {VolumeId} ({Bytes} bytes) for {Name}", Name, volumeId, capacityBytes, name);
        return record;
    }

    /// <summary>
    /// An image of this volume's id exists without its record: a create interrupted between the image and the record,
    /// or a record lost. The id is the CSI name's hash, so it is this volume's image; taking it over (when its size is
    /// the one asked for) finishes the create without overwriting anything.
    /// </summary>
    private async Task<VolumeRecord> AdoptAsync(string volumeId, string name, long capacityBytes, Dictionary<string, string> parameters,
        ContentSource? source, string image, CancellationToken ct)
    {
        var length = new FileInfo(image).Length;
        if (length != capacityBytes)
            throw CsiErrors.FailedPrecondition($"an image of volume {volumeId} without a record already exists on this node with {length} bytes, not the " +
                $"{capacityBytes} asked for; it is kept (see `solar cleanup`)");
        var record = VolumeRecord.New(volumeId, name, capacityBytes, parameters, source);
        await SaveVolumeAsync(record, ct);
        _logger.LogWarning("pool {Pool}: adopted the unrecorded image of {VolumeId} for {Name}", Name, volumeId, name);
        return record;
    }

    private string? SourceImageOf(ContentSource? source, out long size)
    {
        size = 0;
        if (source is null) return null;
        if (source.SnapshotId.Length > 0)
        {
            var snap = _records.GetSnapshot(source.SnapshotId)
                       ?? throw CsiErrors.NotFound($"snapshot {source.SnapshotId} not found");
            size = snap.SizeBytes;
            return SnapshotImageOf(source.SnapshotId);
        }
        if (source.VolumeId.Length > 0)
        {
            var vol = GetVolume(source.VolumeId) ?? throw CsiErrors.NotFound($"source volume {source.VolumeId} not found");
            size = vol.CapacityBytes;
            return BackingPathOf(source.VolumeId);
        }
        return null;
    }

    public async Task DeleteVolumeAsync(string volumeId, CancellationToken ct)
    {
        var record = GetVolume(volumeId);
        var image = BackingPathOf(volumeId);
        if (record is null && !File.Exists(image)) return;
        var users = await _loops.FindByBackingFileAsync(image, ct);
        if (users.Count > 0)
            throw CsiErrors.FailedPrecondition($"volume {volumeId} is still attached as {string.Join(", ", users.Select(u => u.Name))}");
        if (record is { Publications.Count: > 0 })
            throw CsiErrors.FailedPrecondition($"volume {volumeId} is still published to {string.Join(", ", record.Publications.Select(p => p.NodeId))}");
        // Record first: a crash after this leaves an orphan image, which start-up removes.
        _records.DeleteVolume(volumeId);
        if (File.Exists(image)) File.Delete(image);
        _logger.LogInformation("pool {Pool}: deleted volume {VolumeId}", Name, volumeId);
    }

    public async Task<VolumeRecord> ExpandVolumeAsync(string volumeId, long capacityBytes, CancellationToken ct)
    {
        var record = GetVolume(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} not found");
        if (capacityBytes <= record.CapacityBytes) return record;
        using var reservation = _ledger.Reserve(BackingPathOf(volumeId), capacityBytes, Name);
        await using (var stream = new FileStream(BackingPathOf(volumeId), FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(capacityBytes);
            stream.Flush(flushToDisk: true);
        }
        var grown = record with { CapacityBytes = capacityBytes };
        await SaveVolumeAsync(grown, ct);
        return grown;
    }

    public Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct) => _records.SaveVolumeAsync(record, ct);

    public async Task<SnapshotRecord> CreateSnapshotAsync(string snapshotId, string name, string sourceVolumeId, CancellationToken ct)
    {
        if (_records.GetSnapshot(snapshotId) is { } existing) return existing;
        var volume = GetVolume(sourceVolumeId) ?? throw CsiErrors.NotFound($"source volume {sourceVolumeId} not found");
        using var reservation = _ledger.Reserve(SnapshotImageOf(snapshotId), volume.CapacityBytes, Name);
        var image = SnapshotImageOf(snapshotId);
        var temp = image + ".creating";
        try
        {
            await CutPointInTimeAsync(sourceVolumeId, BackingPathOf(sourceVolumeId), temp, "snapshotted", ct);
            File.Move(temp, image, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        var record = new SnapshotRecord(snapshotId, name, sourceVolumeId, volume.CapacityBytes, DateTimeOffset.UtcNow);
        await _records.SaveSnapshotAsync(record, ct);
        _logger.LogInformation("pool {Pool}: snapshot {SnapshotId} of {VolumeId}", Name, snapshotId, sourceVolumeId);
        return record;
    }

    public Task DeleteSnapshotAsync(string snapshotId, CancellationToken ct)
    {
        _records.DeleteSnapshot(snapshotId);
        var image = SnapshotImageOf(snapshotId);
        if (File.Exists(image)) File.Delete(image);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Copies a volume's image as one point in time. Writers on this node are held (fsfreeze) only while the image is
    /// reflinked — milliseconds at any size; the copy shares the blocks and no longer changes after the thaw. Where
    /// the filesystem cannot reflink (ext4, tmpfs) a volume nothing writes to is copied the long way (the caller holds
    /// its slot, so nothing can start writing), and one in use is refused: holding its writers for a whole copy, or
    /// copying under them, are both what a snapshot must not do.
    /// </summary>
    private async Task CutPointInTimeAsync(string volumeId, string image, string destination, string what, CancellationToken ct)
    {
        var record = GetVolume(volumeId) ?? throw CsiErrors.NotFound($"volume {volumeId} not found");
        FaultPoints.Hit("snapshot:before-cut");
        var held = Stopwatch.StartNew();
        var hold = await _quiesce(volumeId, ct);
        bool cloned;
        try
        {
            cloned = Reflink.TryClone(image, destination);
        }
        finally
        {
            if (hold is not null) await hold.DisposeAsync();
            held.Stop();
        }
        if (cloned)
        {
            _logger.LogInformation("pool {Pool}: {VolumeId} {What} by reflink; writers on this node held {HeldMs} ms", Name, volumeId, what,
                hold is null ? 0 : held.ElapsedMilliseconds);
            return;
        }
        var writers = record.Publications.Where(p => !p.ReadOnly && !PublicationRules.IsReadOnlyMode(p.AccessMode)).Select(p => p.NodeId).ToArray();
        if (hold is not null || writers.Length > 0)
            throw CsiErrors.FailedPrecondition($"volume {volumeId} is in use ({(hold is not null ? "mounted on this node" : "attached read-write on " + string.Join(", ", writers))}) " +
                $"and the filesystem of pool {Name} cannot reflink (ext4, tmpfs), so it cannot be {what} without holding its writers for a whole copy; " +
                "put the pool's directory on xfs (reflink=1) or btrfs, or detach the volume first");
        await CopySparseAsync(image, destination, ct);
    }

    private Task CopySparseAsync(string from, string to, CancellationToken ct) =>
        _runner.RunAsync("cp", ["--reflink=never", "--sparse=always", "--", from, to], ct, TimeSpan.FromMinutes(30));

    private void RemoveOrphans()
    {
        foreach (var dir in new[] { _volumes, _snapshots })
        foreach (var image in Directory.EnumerateFiles(dir))
        {
            // Temp files were never anybody's volume. An image without a record may be the only copy of a volume whose
            // record was lost or set aside as unreadable: it is kept and reported (`solar cleanup` lists it, and
            // removes it only when asked to), and a retried create of the same name adopts it.
            var isTemp = image.EndsWith(".creating", StringComparison.Ordinal) || Path.GetFileName(image).StartsWith('.');
            if (isTemp)
            {
                _logger.LogWarning("pool {Pool}: removing {File} left by an interrupted operation", Name, image);
                File.Delete(image);
            }
            else if (image.EndsWith(".img", StringComparison.Ordinal) && !File.Exists(Path.ChangeExtension(image, ".json")))
            {
                _logger.LogWarning("pool {Pool}: {File} has no record; kept (see `solar cleanup`)", Name, image);
            }
        }
    }

    public static Timestamp ToTimestamp(DateTimeOffset when) => Timestamp.FromDateTimeOffset(when);
}
