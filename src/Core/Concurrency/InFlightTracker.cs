using SolarCsi.Core.Errors;

namespace SolarCsi.Core.Concurrency;

/// <summary>
/// One operation per key at a time: a second caller gets ABORTED at once instead of queueing behind a slow
/// mount. The slot is released only when the work itself ends, not when the caller gives up.
/// </summary>
public sealed class InFlightTracker
{
    private readonly Dictionary<string, string> _running = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public int Count { get { lock (_gate) return _running.Count; } }

    /// <summary>The operation holding <paramref name="key"/> now, or null.</summary>
    public string? OperationOn(string key)
    {
        lock (_gate) return _running.GetValueOrDefault(key);
    }

    public Slot Acquire(string key, string operation)
    {
        lock (_gate)
        {
            if (_running.TryGetValue(key, out var other))
                throw CsiErrors.Aborted($"an operation ({other}) is already in progress for {key}");
            _running[key] = operation;
        }
        return new Slot(this, key);
    }

    private void Release(string key)
    {
        lock (_gate) _running.Remove(key);
    }

    public sealed class Slot(InFlightTracker owner, string key) : IDisposable
    {
        private int _released;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) owner.Release(key);
        }
    }
}
