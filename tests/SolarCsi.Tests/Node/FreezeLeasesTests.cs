using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Concurrency;
using SolarCsi.Node.Agent;

namespace SolarCsi.Tests.Node;

public sealed class FreezeLeasesTests
{
    private sealed class Freezer
    {
        public HashSet<string> Frozen { get; } = [];

        public Task<IAsyncDisposable?> QuiesceAsync(string id, CancellationToken ct)
        {
            lock (Frozen) Frozen.Add(id);
            return Task.FromResult<IAsyncDisposable?>(new Release(() => { lock (Frozen) Frozen.Remove(id); }));
        }

        private sealed class Release(Action release) : IAsyncDisposable
        {
            public ValueTask DisposeAsync() { release(); return ValueTask.CompletedTask; }
        }
    }

    [Fact]
    public async Task AFreezeHoldsSlotsUntilThawedAndALostCallerIsThawedByTheLease()
    {
        var inFlight = new InFlightTracker();
        var freezer = new Freezer();
        var leases = new FreezeLeases(inFlight, freezer.QuiesceAsync, NullLogger<FreezeLeases>.Instance);

        await leases.FreezeAsync("g1", ["v-b", "v-a"], TimeSpan.FromMinutes(1), CancellationToken.None);
        Assert.Equal(["v-a", "v-b"], freezer.Frozen.Order());
        Assert.True(leases.Holds("g1", "v-a"));
        Assert.False(leases.Holds("g2", "v-a"));
        // Nothing else runs against a frozen volume meanwhile.
        Assert.Equal(StatusCode.Aborted, Assert.Throws<RpcException>(() => inFlight.Acquire("v-a", "NodeUnstageVolume")).StatusCode);
        await leases.ThawAsync("g1");
        Assert.Empty(freezer.Frozen);
        inFlight.Acquire("v-a", "NodeUnstageVolume").Dispose();
        await leases.ThawAsync("g1"); // a repeated thaw is harmless

        await leases.FreezeAsync("g2", ["v-a"], TimeSpan.FromMilliseconds(200), CancellationToken.None);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (freezer.Frozen.Count > 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Empty(freezer.Frozen);
        Assert.False(leases.Holds("g2", "v-a"));
    }

    [Fact]
    public async Task AFreezeThatCannotTakeEveryVolumeTakesNone()
    {
        var inFlight = new InFlightTracker();
        var freezer = new Freezer();
        var leases = new FreezeLeases(inFlight, freezer.QuiesceAsync, NullLogger<FreezeLeases>.Instance);
        using var busy = inFlight.Acquire("v-b", "NodeStageVolume");
        Assert.Equal(StatusCode.Aborted, (await Assert.ThrowsAsync<RpcException>(() => leases.FreezeAsync("g1", ["v-a", "v-b"], TimeSpan.FromMinutes(1), CancellationToken.None))).StatusCode);
        Assert.Empty(freezer.Frozen);
        inFlight.Acquire("v-a", "x").Dispose();
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => leases.FreezeAsync("g1", ["v-a"], TimeSpan.FromHours(1), CancellationToken.None))).StatusCode);
    }
}
