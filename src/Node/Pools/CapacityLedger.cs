using SolarCsi.Core.Errors;
using SolarCsi.Node.Devices;

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
        lock (_lock)
        {
            var (total, free, _) = DescribeLocked();
            return (total, free);
        }
    }

    /// <summary>Also what each image's record promises now (read once, for a reservation to compare against).</summary>
    private (long Total, long Free, IReadOnlyDictionary<string, long> Recorded) DescribeLocked()
    {
        var promises = _promises.SelectMany(p => p()).ToArray();
        // A reservation counts only for what its image's record does not promise yet: once the operation has written
        // the record (the volume's new size), the reservation still held until it returns must not count it again.
        var recorded = promises.ToDictionary(p => p.Image, p => p.Bytes, StringComparer.Ordinal);
        var reserved = _pending.Sum(r => Math.Max(0, r.Value - recorded.GetValueOrDefault(r.Key)));
        var promised = promises.Sum(p => p.Bytes) + reserved;
        if (configuredCapacity is { } capacity) return (capacity, Math.Max(0, capacity - promised), recorded);
        var unbacked = promises.Sum(p => Math.Max(0, p.Bytes - FilesystemStats.AllocatedBytesOf(p.Image))) + reserved;
        var free = Math.Max(0, FilesystemStats.Of(directory).AvailableBytes - unbacked);
        return (promised + free, free, recorded);
    }

    /// <summary>
    /// Holds room for <paramref name="image"/> to be promised <paramref name="bytes"/> in all (a new volume or snapshot:
    /// its size; an expansion: the new size) until disposed — by then the operation has recorded it (which counts from
    /// then on) or failed. RESOURCE_EXHAUSTED when the difference is not there.
    /// </summary>
    public IDisposable Reserve(string image, long bytes, string pool)
    {
        lock (_lock)
        {
            if (_pending.ContainsKey(image)) throw CsiErrors.Aborted($"{image} is already being allocated");
            var (_, free, recorded) = DescribeLocked();
            var more = bytes - recorded.GetValueOrDefault(image);
            if (free < more) throw CsiErrors.ResourceExhausted($"pool {pool} has {free} bytes free (shared with the other pools on its filesystem), {more} requested");
            _pending[image] = bytes;
        }
        return new Reservation(this, image);
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
