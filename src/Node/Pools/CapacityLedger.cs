using SolarCsi.Core.Devices;
using SolarCsi.Core.Errors;

namespace SolarCsi.Node.Pools;

/// <summary>
/// Every byte the image-file pools promise on one filesystem, counted once. The file and nbd default pools both keep
/// their sparse images on the state directory's filesystem; each used to report that filesystem's free space as its
/// own, so the scheduler and placement could hand out the same bytes twice (ENOSPC inside a pod later). A create,
/// expansion or snapshot reserves its bytes here before it starts, so concurrent ones — in either pool — and
/// GetCapacity in the meantime see them.
/// </summary>
public sealed class CapacityLedger(string directory, long? configuredCapacity)
{
    private readonly Lock _lock = new();
    private readonly List<Func<IEnumerable<Promise>>> _promises = [];
    private readonly Dictionary<string, long> _pending = new(StringComparer.Ordinal);

    /// <summary>A recorded volume or snapshot: the image that backs it and the bytes promised to it.</summary>
    public readonly record struct Promise(string Image, long Bytes);

    /// <summary>Each pool on the filesystem tells the ledger what it has promised (read from its records).</summary>
    public void Register(Func<IEnumerable<Promise>> promises)
    {
        lock (_lock) _promises.Add(promises);
    }

    /// <summary>
    /// Total and free bytes for every pool on this filesystem alike. With a configured capacity: what is left of it.
    /// Without: the filesystem's free space less what the promised images may still grow into (a sparse image has
    /// been given its size but holds only what was written).
    /// </summary>
    public (long Total, long Free) Describe()
    {
        lock (_lock) return DescribeLocked();
    }

    private (long Total, long Free) DescribeLocked()
    {
        var promises = _promises.SelectMany(p => p()).ToArray();
        var promised = promises.Sum(p => p.Bytes) + _pending.Values.Sum();
        if (configuredCapacity is { } capacity) return (capacity, Math.Max(0, capacity - promised));
        var unbacked = promises.Sum(p => Math.Max(0, p.Bytes - FilesystemStats.AllocatedBytesOf(p.Image))) + _pending.Values.Sum();
        var free = Math.Max(0, FilesystemStats.Of(directory).AvailableBytes - unbacked);
        return (promised + free, free);
    }

    /// <summary>
    /// Holds <paramref name="bytes"/> for <paramref name="what"/> until disposed — by then the operation has recorded the
    /// volume or snapshot (which counts from then on) or failed. RESOURCE_EXHAUSTED when they are not there.
    /// </summary>
    public IDisposable Reserve(string what, long bytes, string pool)
    {
        lock (_lock)
        {
            if (_pending.ContainsKey(what)) throw CsiErrors.Aborted($"{what} is already being allocated");
            var free = DescribeLocked().Free;
            if (free < bytes) throw CsiErrors.ResourceExhausted($"pool {pool} has {free} bytes free (shared with the other pools on its filesystem), {bytes} requested");
            _pending[what] = bytes;
        }
        return new Reservation(this, what);
    }

    private void Release(string what)
    {
        lock (_lock) _pending.Remove(what);
    }

    private sealed class Reservation(CapacityLedger ledger, string what) : IDisposable
    {
        private int _released;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) ledger.Release(what);
        }
    }
}
