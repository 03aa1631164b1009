using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Diagnostics;

namespace SolarCsi.SanityTests;

/// <summary>
/// The node plugin is SIGKILLed at each step of NodeStage and NodeUnstage (fault points), restarted, and kubelet's
/// retry must finish the job: the volume works, data written before the crash reads back, and nothing leaks.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CrashRecoveryTests(ClusterFixture fx)
{
    [Theory]
    [InlineData("file", "stage:after-journal")]
    [InlineData("file", "stage:after-attach")]
    [InlineData("file", "stage:after-format")]
    [InlineData("file", "stage:after-mount")]
    [InlineData("nbd", "stage:after-attach")]
    [InlineData("nbd", "stage:after-mount")]
    public async Task CrashDuringStageIsFinishedByTheRetry(string media, string point)
    {
        var (volume, steps) = await NewVolumeAsync(media);
        try
        {
            if (media == "nbd") await steps.ControllerPublishAsync();
            await CrashDuringAsync(point, () => steps.StageAsync());
            await steps.StageAsync();
            await steps.PublishAsync();
            var payload = RandomNumberGenerator.GetBytes(2 << 20);
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "data.bin"), payload);
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            await steps.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"))));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty, (await fx.Cluster.FindLeftoversAsync()).ToString());
    }

    [Theory]
    [InlineData("file", "unstage:after-journal")]
    [InlineData("file", "unstage:after-unmount")]
    [InlineData("file", "unstage:after-detach")]
    [InlineData("nbd", "unstage:after-unmount")]
    [InlineData("nbd", "unstage:after-detach")]
    public async Task CrashDuringUnstageIsFinishedByTheRetry(string media, string point)
    {
        var (volume, steps) = await NewVolumeAsync(media);
        var payload = RandomNumberGenerator.GetBytes(2 << 20);
        try
        {
            if (media == "nbd") await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "data.bin"), payload);
            await steps.UnpublishAsync();
            await CrashDuringAsync(point, () => steps.UnstageAsync());
            await steps.UnstageAsync();
            // Nothing left on the consuming side; an NBD export stays up until ControllerUnpublish, as it should.
            var left = await fx.Cluster.FindLeftoversAsync();
            Assert.Empty(left.Mounts);
            Assert.Empty(left.LoopDevices);
            Assert.DoesNotContain(left.Processes, pid => SolarCsi.Node.Processes.Pid.CommandLine(pid)?.FirstOrDefault()?.EndsWith("nbdfuse", StringComparison.Ordinal) == true);
            await steps.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"))));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty, (await fx.Cluster.FindLeftoversAsync()).ToString());
    }

    [Fact]
    public async Task UnstageBlockedByAnOpenFileIsFinishedOnceItCloses()
    {
        var (volume, steps) = await NewVolumeAsync("file");
        try
        {
            await steps.AttachAsync();
            await steps.UnpublishAsync();
            var journal = Path.Combine(fx.A.Directory, "state", "node", "journal", volume.VolumeId + ".json");
            await using (var holder = new FileStream(Path.Combine(steps.Staging, "held.txt"), FileMode.Create, FileAccess.Write))
            {
                // Something on the node (a stuck process) keeps the staging mount busy: the unstage cannot finish.
                var e = await Assert.ThrowsAsync<RpcException>(() => steps.UnstageAsync());
                Assert.Contains("busy", e.Status.Detail, StringComparison.OrdinalIgnoreCase);
                Assert.Contains("\"unstaging\"", await File.ReadAllTextAsync(journal), StringComparison.OrdinalIgnoreCase);
                // A publish must not bind a volume that is half torn down.
                await Expect.Code(StatusCode.FailedPrecondition, () => steps.PublishAsync());
            }
            // Once the file is closed, the periodic reconciler finishes the unstage without any CO call.
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (File.Exists(journal) && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.False(File.Exists(journal));
            Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
            await steps.UnstageAsync();
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task FailedMkfsLeavesNothingHalfDoneAndTheRetryFormatsOnce()
    {
        var (volume, steps) = await NewVolumeAsync("file");
        var payload = RandomNumberGenerator.GetBytes(1 << 20);
        try
        {
            await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA, environment: new Dictionary<string, string> { [FaultPoints.Variable] = "fail:mkfs" });
            var e = await Assert.ThrowsAsync<RpcException>(() => steps.StageAsync());
            Assert.Equal(StatusCode.Internal, e.StatusCode);
            Assert.Contains("mkfs", e.Status.Detail);
            Assert.Empty((await fx.Cluster.FindLeftoversAsync()).Mounts);
            await Expect.Code(StatusCode.FailedPrecondition, () => steps.PublishAsync());

            await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA);
            await steps.StageAsync();
            await steps.PublishAsync();
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "data.bin"), payload);
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            // Staged again, the filesystem is found, not made anew: the data is still there.
            await steps.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"))));
        }
        finally
        {
            await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA);
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [Fact]
    public async Task LateUnstageNeverTearsDownTheNewPodsStage()
    {
        // kubernetes#121357: NodeUnstage times out on kubelet's side while it still runs; NodeStage and NodePublish
        // for a new pod arrive at once.
        var (volume, steps) = await NewVolumeAsync("file");
        var payload = RandomNumberGenerator.GetBytes(1 << 20);
        try
        {
            await steps.AttachAsync();
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "data.bin"), payload);
            await steps.UnpublishAsync();
            var holder = new FileStream(Path.Combine(steps.Staging, "held.txt"), FileMode.Create, FileAccess.Write);
            Task<StatusCode> unstage;
            try
            {
                unstage = Expect.OutcomeAsync(steps.Node.NodeUnstageVolumeAsync(
                    new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = steps.Staging },
                    deadline: DateTime.UtcNow.AddMilliseconds(300)).ResponseAsync);
                Assert.Equal(StatusCode.DeadlineExceeded, await unstage);
                // The unstage is still running in the plugin: the new pod's calls are turned away, not interleaved.
                Assert.Equal(StatusCode.Aborted, await Expect.OutcomeAsync(steps.Node.NodeStageVolumeAsync(steps.StageRequest()).ResponseAsync));
            }
            finally
            {
                await Task.Delay(4000); // the unstage gives up on the busy mount after its bounded retries
                await holder.DisposeAsync();
            }
            // kubelet retries for the new pod: the stage takes over the half-unstaged volume and keeps it.
            for (var i = 0; ; i++)
            {
                try { await steps.StageAsync(); break; }
                catch (RpcException e) when (e.StatusCode == StatusCode.Aborted && i < 50) { await Task.Delay(100); }
            }
            await steps.PublishAsync();
            await Task.Delay(3000); // a reconcile pass or two: it must not finish the old unstage now
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"))));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    private async Task<(Volume, NodeSteps)> NewVolumeAsync(string media)
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolumeOf(media, 32 << 20, capability));
        return (volume, new NodeSteps(fx, volume, capability));
    }

    /// <summary>Restarts node-a with the fault point armed, makes the call that reaches it, and brings node-a back clean.</summary>
    private async Task CrashDuringAsync(string point, Func<Task> call)
    {
        await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA, environment: new Dictionary<string, string> { [FaultPoints.Variable] = point });
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown, $"{point}: {e.Status}");
        await fx.Cluster.WaitForExitAsync(ClusterFixture.NodeA, TimeSpan.FromSeconds(10));
        await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA);
    }
}
