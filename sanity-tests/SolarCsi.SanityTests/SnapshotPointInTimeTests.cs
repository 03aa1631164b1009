using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Diagnostics;
using SolarCsi.Local;

namespace SolarCsi.SanityTests;

/// <summary>
/// A snapshot is ready only if every writer was held for the whole time its point in time was cut. Its own cluster:
/// the controller's freeze lease is 2 s here, so a storage host that stalls mid-snapshot outlives it.
/// </summary>
public sealed class SnapshotPointInTimeTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("solar-pit-").FullName;
    private readonly TestDisks _disks = new();
    private LocalCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _disks.MountXfs(_root, 8L << 30);
        _cluster = await LocalCluster.StartAsync(_root, [ClusterFixture.NodeA, ClusterFixture.NodeB], nbdFirstPort: 22400,
            controllerArgs: ["--freeze-lease-seconds", "2"]);
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (_cluster is not null) await _cluster.DisposeAsync();
        }
        finally
        {
            _disks.Dispose();
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task AFreezeThatEndsBeforeTheCutFailsTheSnapshotAndKeepsNothing()
    {
        var controller = _cluster.Controller.Controller;
        var capability = ClusterFixture.Mount();
        var volume = (await controller.CreateVolumeAsync(ClusterFixture.NewVolumeOf("nbd", 64 << 20, capability))).Volume;
        // The writer on the other node than the storage host, wherever placement put the volume.
        var host = Core.Ids.StorageId.ParseVolume(volume.VolumeId).Node;
        var consumer = _cluster.Nodes.Single(n => n.NodeId != host);
        var writer = new NodeSteps(_cluster, volume, capability, consumer);
        // The storage host will hang at its next snapshot's cut, after the controller froze the writers.
        await _cluster.RestartNodeAsync(host, environment: new Dictionary<string, string> { [FaultPoints.Variable] = "stop:snapshot:before-cut" });
        await _cluster.WaitForAgentAsync(host);
        try
        {
            await writer.ControllerPublishAsync();
            await writer.AttachAsync();
            await File.WriteAllTextAsync(Path.Combine(writer.Target, "data"), "before");

            var name = "snap-" + Guid.NewGuid().ToString("N");
            var snapshot = controller.CreateSnapshotAsync(new CreateSnapshotRequest { Name = name, SourceVolumeId = volume.VolumeId }).ResponseAsync;
            var log = Path.Combine(_root, "logs", consumer.NodeId + ".log");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!(await File.ReadAllTextAsync(log)).Contains("was not released within its lease", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "the consumer never froze the writer and thawed it by its lease");
                Assert.False(snapshot.IsCompleted, "the snapshot answered before its cut was reached");
                await Task.Delay(100);
            }
            Assert.Equal('T', HostCommand.ProcessState(_cluster.ProcessIdOf(host)));
            // Thawed before the cut: the application writes again.
            await File.WriteAllTextAsync(Path.Combine(writer.Target, "data"), "during");
            HostCommand.Run("kill", "-CONT", _cluster.ProcessIdOf(host).ToString());

            var e = await Assert.ThrowsAsync<RpcException>(() => snapshot);
            Assert.Equal(StatusCode.Aborted, e.StatusCode);
            Assert.Contains(consumer.NodeId, e.Status.Detail);
            Assert.Empty((await controller.ListSnapshotsAsync(new ListSnapshotsRequest { SourceVolumeId = volume.VolumeId })).Entries);
            var snapshots = Path.Combine(_root, host, "state", "pools", "nbd", "default", "snapshots");
            Assert.Empty(Directory.Exists(snapshots) ? Directory.GetFiles(snapshots) : []);

            // The CO's retry cuts it again, with the writer held throughout this time.
            var retried = (await controller.CreateSnapshotAsync(new CreateSnapshotRequest { Name = name, SourceVolumeId = volume.VolumeId })).Snapshot;
            Assert.True(retried.ReadyToUse);
            await controller.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = retried.SnapshotId });
        }
        finally
        {
            HostCommand.Quietly("kill", "-CONT", _cluster.ProcessIdOf(host).ToString());
            await writer.DetachQuietlyAsync();
            await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        }
        Assert.True((await _cluster.FindLeftoversAsync()).IsEmpty);
    }
}
