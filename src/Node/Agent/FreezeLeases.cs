using Microsoft.Extensions.Logging;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Errors;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Agent;

/// <summary>
/// Freezes held for a caller (the controller cutting a group snapshot) under a token: each member's in-flight
/// slot is taken (so no stage, unstage or publish runs against a frozen filesystem) and each filesystem mounted on
/// this node is frozen. A lease bounds it: if the caller dies before thawing, everything is released when the lease
/// runs out, so a lost controller never leaves writers blocked.
/// </summary>
public sealed class FreezeLeases(InFlightTracker inFlight, Quiesce quiesce, ILogger<FreezeLeases> logger)
{
    public static readonly TimeSpan MaxLease = TimeSpan.FromMinutes(10);

    private sealed class Lease(string token)
    {
        public string Token { get; } = token;
        public List<string> Volumes { get; } = [];
        public List<IDisposable> Slots { get; } = [];
        public List<IAsyncDisposable> Freezes { get; } = [];
        public CancellationTokenSource Expiry { get; } = new();
    }

    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// <summary>Whether <paramref name="token"/>'s lease holds <paramref name="volumeId"/> (its slot, its freeze).</summary>
    public bool Holds(string token, string volumeId)
    {
        lock (_leases) return _leases.TryGetValue(token, out var lease) && lease.Volumes.Contains(volumeId);
    }

    public async Task FreezeAsync(string token, IReadOnlyList<string> volumeIds, TimeSpan leaseTime, CancellationToken ct)
    {
        if (leaseTime <= TimeSpan.Zero || leaseTime > MaxLease) throw CsiErrors.InvalidArgument($"lease must be between 1 s and {MaxLease.TotalSeconds} s");
        await _lock.WaitAsync(ct);
        var lease = new Lease(token);
        try
        {
            lock (_leases)
                if (_leases.ContainsKey(token)) throw CsiErrors.Aborted($"a freeze under {token} is already held");
            // Sorted, so two freezes over overlapping volumes take slots in the same order.
            foreach (var id in volumeIds.Distinct().Order(StringComparer.Ordinal))
            {
                lease.Slots.Add(inFlight.Acquire(id, "Freeze"));
                lease.Volumes.Add(id);
                if (await quiesce(id, ct) is { } freeze) lease.Freezes.Add(freeze);
            }
            lock (_leases) _leases[token] = lease;
        }
        catch
        {
            await ReleaseAsync(lease);
            throw;
        }
        finally
        {
            _lock.Release();
        }
        logger.LogInformation("froze {Count} volume(s) for {Token} (lease {Seconds} s)", lease.Volumes.Count, token, leaseTime.TotalSeconds);
        _ = ExpireAsync(lease, leaseTime);
    }

    /// <summary>Releases the freeze; answers whether it was still held (false: its lease ran out or it never existed).</summary>
    public async Task<bool> ThawAsync(string token)
    {
        Lease? lease;
        lock (_leases)
        {
            if (!_leases.Remove(token, out lease)) return false;
        }
        await lease.Expiry.CancelAsync();
        await ReleaseAsync(lease);
        logger.LogInformation("thawed {Count} volume(s) for {Token}", lease.Volumes.Count, token);
        return true;
    }

    private async Task ExpireAsync(Lease lease, TimeSpan after)
    {
        try { await Task.Delay(after, lease.Expiry.Token); }
        catch (OperationCanceledException) { return; }
        logger.LogWarning("freeze {Token} was not released within its lease; thawing", lease.Token);
        await ThawAsync(lease.Token);
    }

    private static async Task ReleaseAsync(Lease lease)
    {
        foreach (var freeze in lease.Freezes) await freeze.DisposeAsync();
        foreach (var slot in lease.Slots) slot.Dispose();
    }
}
