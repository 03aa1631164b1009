using Microsoft.Extensions.Logging.Abstractions;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Agent.V1;
using SolarCsi.Controller.Agents;
using SolarCsi.Controller.Csi;
using SolarCsi.Controller.Placement;
using SolarCsi.Core.Ids;

namespace SolarCsi.Tests.Controller;

public sealed class PlacementAndPagingTests
{
    private static AgentState Agent(string node, long free, string pool = "default") =>
        new(node, "unix:///x", [new PoolInfo { Name = pool, Media = "file", TotalBytes = 100, FreeBytes = free, LargestFreeBytes = free }], NodeTopology.Of(node), DateTimeOffset.UtcNow);

    private static TopologyRequirement Requirement(string[] requisite, string[] preferred)
    {
        var t = new TopologyRequirement();
        t.Requisite.AddRange(requisite.Select(n => new Topology { Segments = { NodeTopology.Of(n) } }));
        t.Preferred.AddRange(preferred.Select(n => new Topology { Segments = { NodeTopology.Of(n) } }));
        return t;
    }

    [Fact]
    public void PicksTheMostFreeSpaceWithoutTopology() =>
        Assert.Equal("b", PoolPlacement.Choose([Agent("a", 10), Agent("b", 50)], "file", "default", 5, null).Agent.NodeId);

    [Fact]
    public void HonoursPreferredOrderWithinRequisite() =>
        Assert.Equal("c", PoolPlacement.Choose([Agent("a", 90), Agent("b", 50), Agent("c", 10)], "file", "default", 5,
            Requirement(["b", "c"], ["c", "b"])).Agent.NodeId);

    [Fact]
    public void SkipsPreferredNodesWithoutRoom() =>
        Assert.Equal("b", PoolPlacement.Choose([Agent("a", 1), Agent("b", 50)], "file", "default", 5, Requirement(["a", "b"], ["a"])).Agent.NodeId);

    [Theory]
    [InlineData(100, StatusCode.ResourceExhausted)]
    public void NothingFitsIsResourceExhausted(long bytes, StatusCode code) =>
        Assert.Equal(code, Assert.Throws<RpcException>(() => PoolPlacement.Choose([Agent("a", 10)], "file", "default", bytes, null)).StatusCode);

    [Fact]
    public void TopologyOutsideEveryNodeIsResourceExhausted() =>
        Assert.Equal(StatusCode.ResourceExhausted, Assert.Throws<RpcException>(() =>
            PoolPlacement.Choose([Agent("a", 10)], "file", "default", 1, Requirement(["z"], []))).StatusCode);

    [Fact]
    public void UnknownPoolIsInvalidArgumentAndNoAgentsIsUnavailable()
    {
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => PoolPlacement.Choose([Agent("a", 10)], "file", "fast", 1, null)).StatusCode);
        Assert.Equal(StatusCode.Unavailable, Assert.Throws<RpcException>(() => PoolPlacement.Choose([], "file", "default", 1, null)).StatusCode);
    }

    [Fact]
    public void APoolWithoutItsHostToolIsNeverChosenAndAloneItSaysWhichPackage()
    {
        var missing = Agent("a", 90);
        missing.Pools[0].Unavailable = "file pool 'default' on node a needs losetup (Debian package mount), not installed";
        Assert.Equal("b", PoolPlacement.Choose([missing, Agent("b", 10)], "file", "default", 5, null).Agent.NodeId);
        var refused = Assert.Throws<RpcException>(() => PoolPlacement.Choose([missing], "file", "default", 5, null));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("Debian package mount", refused.Status.Detail);
    }

    [Fact]
    public void AWarmUpEndsWhenEveryKnownNodeHasAnnouncedItself()
    {
        var clock = new ManualClock();
        using var open = new AgentDirectory(clock, TimeSpan.FromSeconds(20));
        using var allInOne = new AgentDirectory(clock, TimeSpan.FromSeconds(20), ["edge-1"]);
        foreach (var d in new[] { open, allInOne }) d.Record(new AgentAnnouncement { NodeId = "edge-1", Endpoint = "unix:///tmp/a.sock" });
        // A cluster's controller cannot know that no other agent is still to come; one that owns its only node can.
        Assert.True(open.WarmingUp);
        Assert.False(allInOne.WarmingUp);
        using var waiting = new AgentDirectory(clock, TimeSpan.FromSeconds(20), ["edge-1"]);
        Assert.True(waiting.WarmingUp);
        clock.Advance(TimeSpan.FromSeconds(11));
        Assert.False(waiting.WarmingUp);
        Assert.False(open.WarmingUp);
    }

    [Fact]
    public async Task AnUnknownNodeIsUnavailableDuringTheWarmUpAndNotFoundAfterIt()
    {
        var clock = new ManualClock();
        using var directory = new AgentDirectory(clock, TimeSpan.FromSeconds(20));
        var inventory = new Inventory(directory);
        var volume = StorageId.ForVolume("file", "default", "gone", "pvc-1");
        var snapshot = StorageId.ForSnapshot("file", "default", "gone", "snap-1");
        Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<RpcException>(() => inventory.GetVolumeAsync(volume, CancellationToken.None))).StatusCode);
        Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<RpcException>(() => inventory.GetSnapshotAsync(snapshot, CancellationToken.None))).StatusCode);
        clock.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => inventory.GetVolumeAsync(volume, CancellationToken.None))).StatusCode);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => inventory.GetSnapshotAsync(snapshot, CancellationToken.None))).StatusCode);
    }

    [Fact]
    public async Task AnUnpublishTheStorageHostCannotConfirmIsUnavailableNeverOk()
    {
        var clock = new ManualClock();
        using var directory = new AgentDirectory(clock, TimeSpan.FromSeconds(20));
        var inventory = new Inventory(directory);
        var claims = new NameClaims(null, NullLogger<NameClaims>.Instance);
        var service = new ControllerService(directory, inventory, new SolarCsi.Core.Concurrency.InFlightTracker(), new NodeAttachLimits(directory, inventory),
            new SolarCsi.Controller.ControllerOptions("x.csi.dev", SolarCsi.Core.Hosting.GrpcEndpoint.Parse("unix:///x"), SolarCsi.Core.Hosting.GrpcEndpoint.Parse("unix:///y"), TimeSpan.FromSeconds(20)),
            claims, new OrphanSweep(directory, inventory, claims, NullLogger<OrphanSweep>.Instance), NullLogger<ControllerService>.Instance);
        var unpublish = new ControllerUnpublishVolumeRequest { VolumeId = StorageId.ForVolume("nbd", "default", "storage-1", "pvc-1").ToString(), NodeId = "node-b" };
        clock.Advance(TimeSpan.FromSeconds(11));
        // After a controller restart the storage host has not re-announced itself: the old writer's key may still open
        // the export, so the CO must not be told it is unpublished.
        var e = await Assert.ThrowsAsync<RpcException>(() => service.ControllerUnpublishVolume(unpublish, null!));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Contains("storage-1", e.Status.Detail);
        // A local volume lives on the only node that could use it: nothing to fence elsewhere, and a node removed for
        // good must not keep its attachments for ever.
        await service.ControllerUnpublishVolume(new ControllerUnpublishVolumeRequest
        {
            VolumeId = StorageId.ForVolume("file", "default", "storage-1", "pvc-2").ToString(), NodeId = "storage-1",
        }, null!);
        // An id this driver could not have issued is unpublished by definition.
        await service.ControllerUnpublishVolume(new ControllerUnpublishVolumeRequest { VolumeId = "not-ours", NodeId = "node-b" }, null!);
    }

    [Fact]
    public void PagesVisitEveryItemOnceEvenWhenItemsChangeBetweenPages()
    {
        var ids = Enumerable.Range(0, 7).Select(i => StorageId.ForVolume("file", "default", "n", $"v{i}").ToString()).ToList();
        var seen = new List<string>();
        var token = "";
        var pages = 0;
        do
        {
            var (page, next) = PageToken.Slice(ids, s => s, 3, token);
            seen.AddRange(page);
            token = next;
            pages++;
            if (pages == 1) ids.Remove(seen[0]); // deleting an item already returned must not shift the rest
        } while (token != "");
        Assert.Equal(3, pages);
        Assert.Equal(7, seen.Count);
        Assert.Equal(seen.Distinct().Count(), seen.Count);
    }

    [Fact]
    public void BadTokenIsAbortedAndNegativeMaxIsInvalid()
    {
        Assert.Equal(StatusCode.Aborted, Assert.Throws<RpcException>(() => PageToken.Slice<string>([], s => s, 1, "garbage")).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => PageToken.Slice<string>([], s => s, -1, "")).StatusCode);
    }

    [Fact]
    public void AgentDirectoryTreatsSilentAgentsAsUnavailable()
    {
        var clock = new ManualClock();
        using var directory = new AgentDirectory(clock, TimeSpan.FromSeconds(10));
        directory.Record(new AgentAnnouncement { NodeId = "a", Endpoint = "unix:///tmp/a.sock" });
        Assert.Single(directory.Live());
        clock.Advance(TimeSpan.FromSeconds(11));
        Assert.Empty(directory.Live());
        Assert.True(directory.IsKnown("a"));
        Assert.Equal(StatusCode.Unavailable, Assert.Throws<RpcException>(() => directory.ClientFor("a")).StatusCode);
        Assert.Equal(StatusCode.Unavailable, Assert.Throws<RpcException>(() => directory.ClientFor("never")).StatusCode);
    }

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UtcNow;
        public void Advance(TimeSpan by) => _now += by;
        public override DateTimeOffset GetUtcNow() => _now;
    }
}
