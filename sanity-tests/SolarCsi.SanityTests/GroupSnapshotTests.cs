using System.Buffers.Binary;
using Csi.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace SolarCsi.SanityTests;

/// <summary>
/// Group snapshots (the GroupController service): one point in time across volumes on different nodes and media,
/// taken while a writer keeps writing to all of them.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class GroupSnapshotTests(ClusterFixture fx)
{
    private GroupController.GroupControllerClient G => new(fx.Cluster.Controller.Channel);

    [Fact]
    public async Task AGroupSnapshotIsOnePointInTimeAcrossNodesAndMedia()
    {
        var capability = ClusterFixture.Mount();
        var local = await fx.CreateAsync(ClusterFixture.NewVolumeOf("file", 64 << 20, capability));
        var remote = await fx.CreateAsync(ClusterFixture.NewVolumeOf("nbd", 64 << 20, capability));
        var onA = new NodeSteps(fx, local, capability);
        var onB = new NodeSteps(fx, remote, capability, fx.B);
        var restored = new List<(Volume Volume, NodeSteps Steps)>();
        CreateVolumeGroupSnapshotResponse? group = null;
        using var stop = new CancellationTokenSource();
        Task<long>? writer = null;
        try
        {
            await onA.ControllerPublishAsync();
            await onA.AttachAsync();
            await onB.ControllerPublishAsync();
            await onB.AttachAsync();
            // The application's invariant: sequence n goes to the local volume first, then to the remote one. Any
            // single point in time has remote == local or remote == local - 1.
            writer = Task.Run(() => WriteSequence(Path.Combine(onA.Target, "seq"), Path.Combine(onB.Target, "seq"), stop.Token));
            await Task.Delay(500);

            group = await G.CreateVolumeGroupSnapshotAsync(new CreateVolumeGroupSnapshotRequest
            {
                Name = "group-" + Guid.NewGuid().ToString("N"), SourceVolumeIds = { local.VolumeId, remote.VolumeId },
            });
            // Thawed: the writer goes on (polled, with a bound that only keeps a broken run finite).
            var progress = ReadSequence(Path.Combine(onA.Target, "seq"));
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (ReadSequence(Path.Combine(onA.Target, "seq")) == progress && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.True(ReadSequence(Path.Combine(onA.Target, "seq")) > progress, "the writer did not get going again after the group snapshot");
            await stop.CancelAsync();
            Assert.True(await writer > 10, "the writer barely wrote");

            Assert.Equal(2, group.GroupSnapshot.Snapshots.Count);
            Assert.All(group.GroupSnapshot.Snapshots, s => Assert.Equal(group.GroupSnapshot.GroupSnapshotId, s.GroupSnapshotId));
            var values = new Dictionary<string, long>();
            foreach (var member in group.GroupSnapshot.Snapshots)
            {
                var source = member.SourceVolumeId == local.VolumeId ? local : remote;
                var media = source == local ? "file" : "nbd";
                var request = ClusterFixture.NewVolumeOf(media, 64 << 20, capability);
                request.VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = member.SnapshotId } };
                var copy = await fx.CreateAsync(request);
                var steps = new NodeSteps(fx, copy, capability, source == local ? fx.A : fx.B);
                restored.Add((copy, steps));
                await steps.ControllerPublishAsync();
                await steps.AttachAsync();
                values[media] = ReadSequence(Path.Combine(steps.Target, "seq"));
            }
            Assert.True(values["file"] - values["nbd"] is 0 or 1, $"not one point in time: local at {values["file"]}, remote at {values["nbd"]}");
        }
        finally
        {
            await stop.CancelAsync();
            if (writer is not null) await writer.ContinueWith(_ => { });
            foreach (var (volume, steps) in restored)
            {
                await steps.DetachQuietlyAsync();
                await fx.DeleteAsync(volume.VolumeId);
            }
            if (group is not null)
                await G.DeleteVolumeGroupSnapshotAsync(new DeleteVolumeGroupSnapshotRequest { GroupSnapshotId = group.GroupSnapshot.GroupSnapshotId });
            await onA.DetachQuietlyAsync();
            await onB.DetachQuietlyAsync();
            await fx.DeleteAsync(local.VolumeId);
            await fx.DeleteAsync(remote.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [Fact]
    public async Task GroupSnapshotsAnswerAsTheSpecSays()
    {
        var caps = await G.GroupControllerGetCapabilitiesAsync(new GroupControllerGetCapabilitiesRequest());
        Assert.Contains(caps.Capabilities, c => c.Rpc.Type == GroupControllerServiceCapability.Types.RPC.Types.Type.CreateDeleteGetVolumeGroupSnapshot);
        var a = await fx.CreateAsync(ClusterFixture.NewVolume(16 << 20));
        var b = await fx.CreateAsync(ClusterFixture.NewVolume(16 << 20));
        // Whole disks have no snapshots: a group with one is refused before anything is frozen.
        var disk = await fx.CreateAsync(ClusterFixture.NewVolumeOf("disk", ClusterFixture.DiskMinBytes, ClusterFixture.Mount()));
        var name = "group-" + Guid.NewGuid().ToString("N");
        string? groupId = null;
        try
        {
            await Expect.Code(StatusCode.InvalidArgument, async () => await G.CreateVolumeGroupSnapshotAsync(new CreateVolumeGroupSnapshotRequest { SourceVolumeIds = { a.VolumeId } }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await G.CreateVolumeGroupSnapshotAsync(new CreateVolumeGroupSnapshotRequest { Name = name }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await G.CreateVolumeGroupSnapshotAsync(new CreateVolumeGroupSnapshotRequest { Name = name, SourceVolumeIds = { a.VolumeId, disk.VolumeId } }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await G.CreateVolumeGroupSnapshotAsync(new CreateVolumeGroupSnapshotRequest { Name = name, SourceVolumeIds = { a.VolumeId }, Parameters = { ["x"] = "y" } }));
            await Expect.Code(StatusCode.NotFound, async () => await G.CreateVolumeGroupSnapshotAsync(new CreateVolumeGroupSnapshotRequest { Name = name, SourceVolumeIds = { a.VolumeId, a.VolumeId.Replace("~v", "~v0").Remove(a.VolumeId.Length) } }));

            var first = (await G.CreateVolumeGroupSnapshotAsync(new CreateVolumeGroupSnapshotRequest { Name = name, SourceVolumeIds = { a.VolumeId, b.VolumeId } })).GroupSnapshot;
            groupId = first.GroupSnapshotId;
            var again = (await G.CreateVolumeGroupSnapshotAsync(new CreateVolumeGroupSnapshotRequest { Name = name, SourceVolumeIds = { b.VolumeId, a.VolumeId } })).GroupSnapshot;
            Assert.Equal(groupId, again.GroupSnapshotId);
            Assert.Equal(first.Snapshots.Select(s => s.SnapshotId).Order(), again.Snapshots.Select(s => s.SnapshotId).Order());
            await Expect.Code(StatusCode.AlreadyExists, async () => await G.CreateVolumeGroupSnapshotAsync(new CreateVolumeGroupSnapshotRequest { Name = name, SourceVolumeIds = { a.VolumeId } }));

            var members = first.Snapshots.Select(s => s.SnapshotId).ToArray();
            var got = (await G.GetVolumeGroupSnapshotAsync(new GetVolumeGroupSnapshotRequest { GroupSnapshotId = groupId, SnapshotIds = { members } })).GroupSnapshot;
            Assert.Equal(members.Order(), got.Snapshots.Select(s => s.SnapshotId).Order());
            Assert.True(got.ReadyToUse);
            await Expect.Code(StatusCode.InvalidArgument, async () => await G.GetVolumeGroupSnapshotAsync(new GetVolumeGroupSnapshotRequest { GroupSnapshotId = groupId, SnapshotIds = { members[0] } }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await G.GetVolumeGroupSnapshotAsync(new GetVolumeGroupSnapshotRequest()));
            await Expect.Code(StatusCode.NotFound, async () => await G.GetVolumeGroupSnapshotAsync(new GetVolumeGroupSnapshotRequest { GroupSnapshotId = groupId.Replace("~g", "~g0").Remove(groupId.Length) }));

            // Members are ordinary snapshots to list and restore, but they go only with their group.
            var listed = (await fx.Controller.ListSnapshotsAsync(new ListSnapshotsRequest())).Entries.Select(e => e.Snapshot).Where(s => members.Contains(s.SnapshotId)).ToArray();
            Assert.Equal(2, listed.Length);
            Assert.All(listed, s => Assert.Equal(groupId, s.GroupSnapshotId));
            await Expect.Code(StatusCode.FailedPrecondition, async () => await fx.Controller.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = members[0] }));

            await Expect.Code(StatusCode.InvalidArgument, async () => await G.DeleteVolumeGroupSnapshotAsync(new DeleteVolumeGroupSnapshotRequest { GroupSnapshotId = groupId, SnapshotIds = { members[1] } }));
            await G.DeleteVolumeGroupSnapshotAsync(new DeleteVolumeGroupSnapshotRequest { GroupSnapshotId = groupId, SnapshotIds = { members } });
            await G.DeleteVolumeGroupSnapshotAsync(new DeleteVolumeGroupSnapshotRequest { GroupSnapshotId = groupId, SnapshotIds = { members } });
            Assert.DoesNotContain((await fx.Controller.ListSnapshotsAsync(new ListSnapshotsRequest())).Entries, e => members.Contains(e.Snapshot.SnapshotId));
            await Expect.Code(StatusCode.NotFound, async () => await G.GetVolumeGroupSnapshotAsync(new GetVolumeGroupSnapshotRequest { GroupSnapshotId = groupId }));
            groupId = null;
        }
        finally
        {
            if (groupId is not null) await G.DeleteVolumeGroupSnapshotAsync(new DeleteVolumeGroupSnapshotRequest { GroupSnapshotId = groupId });
            foreach (var v in new[] { a, b, disk }) await fx.DeleteAsync(v.VolumeId);
        }
    }

    /// <summary>Writes 1, 2, 3… to both files in turn, each durable before the next, until cancelled; returns the last.</summary>
    private static long WriteSequence(string first, string second, CancellationToken stop)
    {
        using var a = new FileStream(first, FileMode.Create, FileAccess.Write);
        using var b = new FileStream(second, FileMode.Create, FileAccess.Write);
        var buffer = new byte[8];
        long n = 0;
        while (!stop.IsCancellationRequested)
        {
            n++;
            BinaryPrimitives.WriteInt64LittleEndian(buffer, n);
            foreach (var file in new[] { a, b })
            {
                file.Position = 0;
                file.Write(buffer);
                file.Flush(flushToDisk: true);
            }
        }
        return n;
    }

    private static long ReadSequence(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Span<byte> buffer = stackalloc byte[8];
        stream.ReadExactly(buffer);
        return BinaryPrimitives.ReadInt64LittleEndian(buffer);
    }
}
