using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;
using CapType = Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type;

namespace SolarCsi.SanityTests;

[Collection(ClusterCollection.Name)]
public sealed class ControllerConformanceTests(ClusterFixture fx)
{
    private Csi.V1.Controller.ControllerClient C => fx.Controller;

    [Fact]
    public async Task AdvertisesExactlyWhatWorks()
    {
        var caps = (await C.ControllerGetCapabilitiesAsync(new ControllerGetCapabilitiesRequest())).Capabilities.Select(c => c.Rpc.Type).ToHashSet();
        CapType[] expected =
        [
            CapType.CreateDeleteVolume, CapType.PublishUnpublishVolume, CapType.ListVolumes, CapType.GetCapacity,
            CapType.CreateDeleteSnapshot, CapType.ListSnapshots, CapType.CloneVolume, CapType.PublishReadonly,
            CapType.ExpandVolume, CapType.ListVolumesPublishedNodes, CapType.GetVolume, CapType.SingleNodeMultiWriter, CapType.VolumeCondition,
            CapType.ModifyVolume,
        ];
        Assert.Equal(expected.ToHashSet(), caps);
    }

    [Fact]
    public async Task CreateVolumeRequiresNameAndCapabilities()
    {
        var before = await AllVolumeIdsAsync();
        var noName = ClusterFixture.NewVolume();
        noName.Name = "";
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(noName));
        var noCaps = ClusterFixture.NewVolume();
        noCaps.VolumeCapabilities.Clear();
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(noCaps));
        var noMode = ClusterFixture.NewVolume(capability: new VolumeCapability { Mount = new VolumeCapability.Types.MountVolume() });
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(noMode));
        var unknownParameter = ClusterFixture.NewVolume();
        unknownParameter.Parameters["fstpye"] = "ext4";
        var e = await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(unknownParameter));
        Assert.Contains("fstpye", e.Status.Detail);
        var multiWriter = ClusterFixture.NewVolume(capability: ClusterFixture.Mount(mode: AccessMode.MultiNodeMultiWriter));
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(multiWriter));
        var huge = ClusterFixture.NewVolume(bytes: long.MaxValue);
        await Expect.Code(StatusCode.OutOfRange, async () => await C.CreateVolumeAsync(huge));
        var badFs = ClusterFixture.NewVolume(capability: ClusterFixture.Mount(fsType: "ntfs"));
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(badFs));
        Assert.Equal(before, await AllVolumeIdsAsync());
    }

    [Fact]
    public async Task CreateVolumeIsIdempotentByNameAndRefusesIncompatibleRepeats()
    {
        var request = ClusterFixture.NewVolume(bytes: (10 << 20) + 1);
        var first = await fx.CreateAsync(request);
        try
        {
            var second = await fx.CreateAsync(request);
            Assert.Equal(first.VolumeId, second.VolumeId);
            Assert.Equal(first.CapacityBytes, second.CapacityBytes);
            Assert.True(first.CapacityBytes >= request.CapacityRange.RequiredBytes);
            Assert.Single(await AllVolumeIdsAsync(), id => id == first.VolumeId);
            var topology = Assert.Single(first.AccessibleTopology);
            Assert.Equal(ClusterFixture.NodeA, topology.Segments[NodeTopology.Key]);

            var bigger = request.Clone();
            bigger.CapacityRange = new CapacityRange { RequiredBytes = 1L << 30 };
            await Expect.Code(StatusCode.AlreadyExists, async () => await C.CreateVolumeAsync(bigger));
            var otherPool = request.Clone();
            otherPool.Parameters["pool"] = "other";
            await Expect.Code(StatusCode.AlreadyExists, async () => await C.CreateVolumeAsync(otherPool));
        }
        finally
        {
            await fx.DeleteAsync(first.VolumeId);
        }
    }

    [Fact]
    public async Task CapacityRangeIsHonoured()
    {
        var exact = ClusterFixture.NewVolume();
        exact.CapacityRange = new CapacityRange { RequiredBytes = 3 << 20, LimitBytes = 3 << 20 };
        var volume = await fx.CreateAsync(exact);
        await fx.DeleteAsync(volume.VolumeId);
        Assert.Equal(3 << 20, volume.CapacityBytes);

        var inverted = ClusterFixture.NewVolume();
        inverted.CapacityRange = new CapacityRange { RequiredBytes = 5 << 20, LimitBytes = 4 << 20 };
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(inverted));
    }

    [Fact]
    public async Task TopologyThatNoNodeHasIsResourceExhausted()
    {
        var request = ClusterFixture.NewVolume(node: "node-z");
        await Expect.Code(StatusCode.ResourceExhausted, async () => await C.CreateVolumeAsync(request));
    }

    [Fact]
    public async Task DeleteVolumeIsIdempotentAndForgivesUnknownIds()
    {
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.DeleteVolumeAsync(new DeleteVolumeRequest()));
        await C.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = "reallyfakevolumeid" });
        await C.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = "../../etc/passwd" });
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume());
        await fx.DeleteAsync(volume.VolumeId);
        await fx.DeleteAsync(volume.VolumeId);
        Assert.DoesNotContain(volume.VolumeId, await AllVolumeIdsAsync());
    }

    [Fact]
    public async Task ValidateVolumeCapabilities()
    {
        await Expect.Code(StatusCode.NotFound, async () => await C.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest
        {
            VolumeId = StorageId.ForVolume("file", "default", ClusterFixture.NodeA, "missing").ToString(), VolumeCapabilities = { ClusterFixture.Mount() },
        }));
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume());
        try
        {
            await Expect.Code(StatusCode.InvalidArgument, async () => await C.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest { VolumeId = volume.VolumeId }));
            var ok = await C.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest
            {
                VolumeId = volume.VolumeId, VolumeCapabilities = { ClusterFixture.Mount(), ClusterFixture.Block() },
            });
            Assert.Equal(2, ok.Confirmed.VolumeCapabilities.Count);
            var no = await C.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest
            {
                VolumeId = volume.VolumeId, VolumeCapabilities = { ClusterFixture.Mount(mode: AccessMode.MultiNodeMultiWriter) },
            });
            Assert.Null(no.Confirmed);
            Assert.NotEmpty(no.Message);
        }
        finally
        {
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task ListVolumesPagesThroughEveryVolumeOnce()
    {
        var created = new List<string>();
        try
        {
            for (var i = 0; i < 5; i++) created.Add((await fx.CreateAsync(ClusterFixture.NewVolume(node: i % 2 == 0 ? ClusterFixture.NodeA : ClusterFixture.NodeB))).VolumeId);
            var seen = new List<string>();
            var token = "";
            do
            {
                var page = await C.ListVolumesAsync(new ListVolumesRequest { MaxEntries = 2, StartingToken = token });
                Assert.True(page.Entries.Count <= 2);
                seen.AddRange(page.Entries.Select(e => e.Volume.VolumeId));
                token = page.NextToken;
            } while (token != "");
            Assert.Equal(seen.Distinct().Count(), seen.Count);
            Assert.All(created, id => Assert.Contains(id, seen));
            await Expect.Code(StatusCode.Aborted, async () => await C.ListVolumesAsync(new ListVolumesRequest { StartingToken = "not-a-token" }));
        }
        finally
        {
            foreach (var id in created) await fx.DeleteAsync(id);
        }
    }

    [Fact]
    public async Task GetCapacityReportsPerTopologyAndShrinksWhenVolumesAreCreated()
    {
        var onA = new GetCapacityRequest { AccessibleTopology = new Topology { Segments = { NodeTopology.Of(ClusterFixture.NodeA) } } };
        var before = (await C.GetCapacityAsync(onA)).AvailableCapacity;
        Assert.True(before > 0);
        Assert.Equal(0, (await C.GetCapacityAsync(new GetCapacityRequest { AccessibleTopology = new Topology { Segments = { NodeTopology.Of("node-z") } } })).AvailableCapacity);
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 1L << 30));
        try
        {
            Assert.Equal(before - (1L << 30), (await C.GetCapacityAsync(onA)).AvailableCapacity);
        }
        finally
        {
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.Equal(before, (await C.GetCapacityAsync(onA)).AvailableCapacity);
    }

    [Fact]
    public async Task ControllerPublishEnforcesSingleNodeAccess()
    {
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume());
        var publish = new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = ClusterFixture.NodeA, VolumeCapability = ClusterFixture.Mount() };
        try
        {
            await Expect.Code(StatusCode.InvalidArgument, async () => await C.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { NodeId = ClusterFixture.NodeA, VolumeCapability = ClusterFixture.Mount() }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await C.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, VolumeCapability = ClusterFixture.Mount() }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await C.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = ClusterFixture.NodeA }));
            await Expect.Code(StatusCode.NotFound, async () => await C.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = StorageId.ForVolume("file", "default", ClusterFixture.NodeA, "nope").ToString(), NodeId = ClusterFixture.NodeA, VolumeCapability = ClusterFixture.Mount(),
            }));
            var unknownNode = publish.Clone();
            unknownNode.NodeId = "node-z";
            await Expect.Code(StatusCode.NotFound, async () => await C.ControllerPublishVolumeAsync(unknownNode));

            var first = await C.ControllerPublishVolumeAsync(publish);
            var again = await C.ControllerPublishVolumeAsync(publish);
            Assert.Equal(first.PublishContext, again.PublishContext);
            var readOnly = publish.Clone();
            readOnly.Readonly = true;
            await Expect.Code(StatusCode.AlreadyExists, async () => await C.ControllerPublishVolumeAsync(readOnly));
            var elsewhere = publish.Clone();
            elsewhere.NodeId = ClusterFixture.NodeB;
            await Expect.Code(StatusCode.FailedPrecondition, async () => await C.ControllerPublishVolumeAsync(elsewhere));
            await Expect.Code(StatusCode.FailedPrecondition, async () => await C.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId }));

            var status = await C.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId });
            Assert.Equal([ClusterFixture.NodeA], status.Status.PublishedNodeIds);
            var listed = (await C.ListVolumesAsync(new ListVolumesRequest())).Entries.Single(e => e.Volume.VolumeId == volume.VolumeId);
            Assert.Equal([ClusterFixture.NodeA], listed.Status.PublishedNodeIds);
        }
        finally
        {
            var unpublish = new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = ClusterFixture.NodeA };
            await C.ControllerUnpublishVolumeAsync(unpublish);
            await C.ControllerUnpublishVolumeAsync(unpublish);
            Assert.Empty((await C.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId })).Status.PublishedNodeIds);
            await fx.DeleteAsync(volume.VolumeId);
        }
        await C.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = ClusterFixture.NodeA });
    }

    [Fact]
    public async Task ExpandVolume()
    {
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 16 << 20));
        try
        {
            await Expect.Code(StatusCode.InvalidArgument, async () => await C.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest { VolumeId = volume.VolumeId }));
            await Expect.Code(StatusCode.NotFound, async () => await C.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
            {
                VolumeId = StorageId.ForVolume("file", "default", ClusterFixture.NodeA, "nope").ToString(), CapacityRange = new CapacityRange { RequiredBytes = 1 << 30 },
            }));
            var grown = await C.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest { VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 32 << 20 } });
            Assert.True(grown.CapacityBytes >= 32 << 20);
            Assert.True(grown.NodeExpansionRequired);
            var again = await C.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest { VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 32 << 20 } });
            Assert.Equal(grown.CapacityBytes, again.CapacityBytes);
            Assert.Equal(grown.CapacityBytes, (await C.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId })).Volume.CapacityBytes);
        }
        finally
        {
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task SnapshotsAreIdempotentListableAndPaged()
    {
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 8 << 20));
        var other = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 8 << 20));
        var snapshots = new List<string>();
        try
        {
            await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateSnapshotAsync(new CreateSnapshotRequest { SourceVolumeId = volume.VolumeId }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "s" }));
            await Expect.Code(StatusCode.NotFound, async () => await C.CreateSnapshotAsync(new CreateSnapshotRequest
            {
                Name = "s-" + Guid.NewGuid(), SourceVolumeId = StorageId.ForVolume("file", "default", ClusterFixture.NodeA, "nope").ToString(),
            }));

            var request = new CreateSnapshotRequest { Name = "snap-" + Guid.NewGuid().ToString("N"), SourceVolumeId = volume.VolumeId };
            var snap = (await C.CreateSnapshotAsync(request)).Snapshot;
            snapshots.Add(snap.SnapshotId);
            Assert.True(snap.ReadyToUse);
            Assert.Equal(volume.VolumeId, snap.SourceVolumeId);
            Assert.Equal(volume.CapacityBytes, snap.SizeBytes);
            Assert.Equal(snap.SnapshotId, (await C.CreateSnapshotAsync(request)).Snapshot.SnapshotId);
            var conflicting = request.Clone();
            conflicting.SourceVolumeId = other.VolumeId;
            await Expect.Code(StatusCode.AlreadyExists, async () => await C.CreateSnapshotAsync(conflicting));

            for (var i = 0; i < 2; i++)
                snapshots.Add((await C.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "snap-" + Guid.NewGuid().ToString("N"), SourceVolumeId = other.VolumeId })).Snapshot.SnapshotId);

            Assert.Equal(snap.SnapshotId, Assert.Single((await C.ListSnapshotsAsync(new ListSnapshotsRequest { SnapshotId = snap.SnapshotId })).Entries).Snapshot.SnapshotId);
            Assert.Equal(2, (await C.ListSnapshotsAsync(new ListSnapshotsRequest { SourceVolumeId = other.VolumeId })).Entries.Count);
            Assert.Empty((await C.ListSnapshotsAsync(new ListSnapshotsRequest { SnapshotId = "no-such-snapshot" })).Entries);
            var seen = new List<string>();
            var token = "";
            do
            {
                var page = await C.ListSnapshotsAsync(new ListSnapshotsRequest { MaxEntries = 1, StartingToken = token });
                seen.AddRange(page.Entries.Select(e => e.Snapshot.SnapshotId));
                token = page.NextToken;
            } while (token != "");
            Assert.All(snapshots, id => Assert.Contains(id, seen));
            Assert.Equal(seen.Distinct().Count(), seen.Count);
            await Expect.Code(StatusCode.Aborted, async () => await C.ListSnapshotsAsync(new ListSnapshotsRequest { StartingToken = "bogus" }));
        }
        finally
        {
            foreach (var id in snapshots)
            {
                await C.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = id });
                await C.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = id });
            }
            await fx.DeleteAsync(volume.VolumeId);
            await fx.DeleteAsync(other.VolumeId);
        }
        await Expect.Code(StatusCode.InvalidArgument, async () => await C.DeleteSnapshotAsync(new DeleteSnapshotRequest()));
        Assert.DoesNotContain((await C.ListSnapshotsAsync(new ListSnapshotsRequest())).Entries, e => snapshots.Contains(e.Snapshot.SnapshotId));
    }

    private async Task<List<string>> AllVolumeIdsAsync() =>
        (await C.ListVolumesAsync(new ListVolumesRequest())).Entries.Select(e => e.Volume.VolumeId).Order(StringComparer.Ordinal).ToList();
}
