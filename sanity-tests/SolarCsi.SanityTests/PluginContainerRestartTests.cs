using System.Buffers.Binary;
using System.Diagnostics;
using Csi.V1;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Processes;

namespace SolarCsi.SanityTests;

/// <summary>
/// The NBD data plane outlives the node plugin's container: a node whose plugin runs in one container and its
/// data-plane host in another (as the two DaemonSets run them) serves an NBD volume from its own pool to itself —
/// export and attachment on the same node — while a writer on this machine appends fsync'ed records. The plugin's
/// container is restarted under it.
/// </summary>
public sealed partial class RemoteStorageHostTests
{
    private const string ContainerNodeId = "node-c";
    private const int RecordBytes = 4096;

    [SkippableFact]
    public async Task RestartingTheNodePluginsContainerUnderAWriterLosesNoWriteAndFailsNone()
    {
        Skip.If(fx.Unavailable is not null, $"no Docker engine: {fx.Unavailable}");
        await using var node = await ContainerizedNode.StartAsync(fx, ContainerNodeId, SolarCsi.Local.LocalCluster.FreePort(), "21700-21719");
        var capability = ClusterFixture.Mount();
        var create = new CreateVolumeRequest
        {
            Name = "survivor-" + Guid.NewGuid().ToString("N"), CapacityRange = new CapacityRange { RequiredBytes = 256 << 20 },
            VolumeCapabilities = { capability }, Parameters = { ["media"] = "nbd" },
            AccessibilityRequirements = new TopologyRequirement { Requisite = { new Topology { Segments = { NodeTopology.Of(ContainerNodeId) } } } },
        };
        var volume = (await fx.Cluster.Controller.Controller.CreateVolumeAsync(create)).Volume;
        Assert.Equal(ContainerNodeId, volume.VolumeId.Split('~')[2]);
        var steps = new NodeSteps(fx.Cluster, volume, capability, node.Plugin, node.KubeletDir);
        try
        {
            await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            var helpersBefore = node.Helpers().Order().ToArray();
            // The export (nbdkit), and the attachment's nbdfuse with its nbdkit proxy: all started by the data-plane host.
            Assert.Equal(3, helpersBefore.Length);

            var file = Path.Combine(steps.Target, "records");
            using var stop = new CancellationTokenSource();
            var writer = Task.Run(() => WriteRecords(file, stop.Token));
            await WaitForRecordsAsync(writer, 200);
            // A rolling update (SIGTERM), then a crash (SIGKILL), each while the writer runs.
            var away = new List<TimeSpan>();
            foreach (var crash in new[] { false, true })
            {
                away.Add(await node.RestartPluginContainerAsync(crash));
                await WaitForRecordsAsync(writer, Volatile.Read(ref _acknowledged) + 200);
            }
            await stop.CancelAsync();
            var (acknowledged, longestWrite) = await writer;

            output.WriteLine($"plugin container away for {away[0].TotalSeconds:0.00} s (restart) and {away[1].TotalSeconds:0.00} s (kill + start); " +
                             $"{acknowledged} records written and fsync'ed, longest single write+fsync {longestWrite.TotalMilliseconds:0} ms");
            // The same helpers, adopted by the restarted plugin: none restarted, none started twice.
            Assert.Equal(helpersBefore, node.Helpers().Order().ToArray());
            var stats = await node.Plugin.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = steps.Target });
            Assert.False(stats.VolumeCondition.Abnormal, stats.VolumeCondition.Message);

            // Torn down by the restarted plugin, then attached afresh: every acknowledged record is there.
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            Assert.Single(node.Helpers()); // only the export stays, for the publication
            await steps.AttachAsync();
            var content = await File.ReadAllBytesAsync(file);
            Assert.True(content.Length >= acknowledged * RecordBytes, $"{content.Length} bytes read back, {acknowledged} records acknowledged");
            for (var i = 0; i < acknowledged; i++)
                Assert.Equal(i, BinaryPrimitives.ReadInt64LittleEndian(content.AsSpan(i * RecordBytes)));

            // The data-plane pod itself restarted: its helpers go with it — the attachment breaks (said, not hidden),
            // an unstage releases the device all the same, and the export comes back by itself for the next stage.
            var fuseFile = Path.Combine(node.StateDir, "node", "nbd", volume.VolumeId, "fuse", "disk");
            var device = Assert.Single(await Loops.FindByBackingFileAsync(fuseFile, CancellationToken.None)).Name;
            var helpers = node.Helpers();
            await node.RestartDataPlaneContainerAsync();
            Assert.All(helpers, pid => Assert.Null(Pid.CommandLine(pid)));
            stats = await node.Plugin.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = steps.Target });
            Assert.True(stats.VolumeCondition.Abnormal);
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            Assert.DoesNotContain(await Loops.ListAsync(CancellationToken.None), d => d.Name == device && d.BackingInode == 0);
            await WaitForAsync(() => node.Helpers().Count == 1, "the export to be started again");
            await steps.AttachAsync();
            content = await File.ReadAllBytesAsync(file);
            Assert.Equal(acknowledged - 1, BinaryPrimitives.ReadInt64LittleEndian(content.AsSpan((int)(acknowledged - 1) * RecordBytes)));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.Cluster.Controller.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        }
        Assert.Empty(node.Helpers());
        Assert.Empty((await SolarCsi.Local.LocalCluster.FindLeftoversUnderAsync(node.KubeletDir)).Mounts);
    }

    private static readonly SolarCsi.Node.Devices.LoopDevices Loops =
        new(new SolarCsi.Node.Processes.ProcessRunner(Microsoft.Extensions.Logging.Abstractions.NullLogger<SolarCsi.Node.Processes.ProcessRunner>.Instance));

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"gave up waiting for {what}");
            await Task.Delay(100);
        }
    }

    private long _acknowledged;

    /// <summary>Appends numbered 4 KiB records, each fsync'ed before the next: a record counts once its fsync returned.</summary>
    private (long Acknowledged, TimeSpan Longest) WriteRecords(string file, CancellationToken stop)
    {
        using var stream = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.Read);
        var record = new byte[RecordBytes];
        var longest = TimeSpan.Zero;
        long n = 0;
        while (!stop.IsCancellationRequested)
        {
            BinaryPrimitives.WriteInt64LittleEndian(record, n);
            var watch = Stopwatch.StartNew();
            stream.Write(record);
            stream.Flush(flushToDisk: true);
            longest = watch.Elapsed > longest ? watch.Elapsed : longest;
            Volatile.Write(ref _acknowledged, ++n);
        }
        return (n, longest);
    }

    private async Task WaitForRecordsAsync(Task writer, long count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (Volatile.Read(ref _acknowledged) < count)
        {
            if (writer.IsCompleted) await writer; // the writer failed: its exception is the test's failure
            Assert.True(DateTime.UtcNow < deadline, $"the writer stalled at {Volatile.Read(ref _acknowledged)} records");
            await Task.Delay(20);
        }
    }
}
