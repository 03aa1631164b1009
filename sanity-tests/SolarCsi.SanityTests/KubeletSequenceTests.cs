using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;

namespace SolarCsi.SanityTests;

/// <summary>
/// Replays the orders kubelet really produces (retries, duplicates, calls after a plugin restart, steps out of
/// order after a timeout) as scripts, one step per word, and checks each step's status code. Every script ends
/// with the data written in it reading back and nothing left on the machine.
/// </summary>
/// <remarks>
/// Words: stage, publish, unpublish, unstage (the calls, expected OK); word=Code expects that gRPC status;
/// publish2/unpublish2 use a second pod's target on the same node; cpublish/cunpublish are the controller's
/// calls; write/verify put a payload into the first target and read it back; crash SIGKILLs the node plugin and
/// restarts it; restart stops it gracefully; reconcile waits for the background reconciler to pass.
/// </remarks>
[Collection(ClusterCollection.Name)]
public sealed class KubeletSequenceTests(ClusterFixture fx)
{
    [Theory]
    [InlineData("file", "stage publish write unpublish unstage stage publish verify")]
    [InlineData("file", "stage stage publish publish write unpublish unpublish unstage unstage stage publish verify")]
    [InlineData("file", "publish=FailedPrecondition stage publish write verify")]
    [InlineData("file", "unpublish unstage stage publish write verify")]
    [InlineData("file", "stage publish write unstage=FailedPrecondition verify unpublish unstage")]
    [InlineData("file", "stage publish publish2 write unpublish unstage=FailedPrecondition unpublish2 unstage stage publish verify")]
    [InlineData("file", "stage publish write crash verify unpublish unstage stage publish verify")]
    [InlineData("file", "stage crash stage publish write restart publish verify")]
    [InlineData("file", "stage publish write unpublish crash reconcile unstage stage publish verify")]
    [InlineData("file", "stage publish write unpublish unstage crash unstage unpublish stage publish verify")]
    [InlineData("file", "stage publish write unpublish unstage reconcile publish=FailedPrecondition stage publish verify")]
    [InlineData("nbd", "cpublish stage publish write crash verify unpublish unstage stage publish verify")]
    [InlineData("nbd", "cpublish stage publish write unpublish unstage cunpublish cpublish stage publish verify")]
    [InlineData("nbd", "stage=InvalidArgument cpublish cpublish stage stage publish write verify")]
    public async Task SequenceEndsWithTheDataIntactAndNothingLeaked(string media, string script)
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolumeOf(media, 32 << 20, capability));
        var steps = new NodeSteps(fx, volume, capability);
        var second = KubeletPaths.NewTarget(fx.Cluster.KubeletDir);
        var payload = RandomNumberGenerator.GetBytes(1 << 20);
        try
        {
            foreach (var (word, index) in script.Split(' ').Select((w, i) => (w, i)))
            {
                var (step, expected) = word.Split('=') is [var s, var c] ? (s, Enum.Parse<StatusCode>(c)) : (word, StatusCode.OK);
                var outcome = await Expect.OutcomeAsync(RunAsync(step, steps, second, payload));
                // ABORTED is what a CO retries: the reconciler may hold the volume for a moment after a restart.
                for (var attempt = 0; outcome == StatusCode.Aborted && expected != StatusCode.Aborted && attempt < 50; attempt++)
                {
                    await Task.Delay(100);
                    outcome = await Expect.OutcomeAsync(RunAsync(step, steps, second, payload));
                }
                Assert.True(expected == outcome, $"step {index + 1} '{word}' of \"{script}\": expected {expected}, got {outcome}");
            }
        }
        finally
        {
            await QuietlyAsync(() => steps.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = second }).ResponseAsync);
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        var left = await fx.Cluster.FindLeftoversAsync();
        Assert.True(left.IsEmpty, left.ToString());
        Assert.False(Path.Exists(steps.Target) || Path.Exists(second), "a target directory was left behind");
    }

    private async Task RunAsync(string step, NodeSteps steps, string second, byte[] payload)
    {
        var file = Path.Combine(steps.Target, "data.bin");
        switch (step)
        {
            case "stage": await steps.Node.NodeStageVolumeAsync(steps.StageRequest()); break;
            case "publish":
                Directory.CreateDirectory(Path.GetDirectoryName(steps.Target)!);
                await steps.Node.NodePublishVolumeAsync(steps.PublishRequest());
                break;
            case "publish2":
                Directory.CreateDirectory(Path.GetDirectoryName(second)!);
                var request = steps.PublishRequest();
                request.TargetPath = second;
                await steps.Node.NodePublishVolumeAsync(request);
                break;
            case "unpublish":
                await steps.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = steps.VolumeId, TargetPath = steps.Target });
                break;
            case "unpublish2":
                await steps.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = steps.VolumeId, TargetPath = second });
                break;
            case "unstage":
                await steps.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = steps.VolumeId, StagingTargetPath = steps.Staging });
                break;
            case "cpublish": await steps.ControllerPublishAsync(); break;
            case "cunpublish": await steps.ControllerUnpublishAsync(); break;
            case "write":
                await File.WriteAllBytesAsync(file, payload);
                using (var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite)) RandomAccess.FlushToDisk(handle);
                break;
            case "verify":
                Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(file)));
                break;
            case "crash": await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA, crash: true); break;
            case "restart": await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA); break;
            case "reconcile": await Task.Delay(TimeSpan.FromSeconds(5)); break; // the suite's nodes reconcile every 2 s
            default: throw new ArgumentException($"unknown step '{step}'");
        }
    }

    private static async Task QuietlyAsync(Func<Task> call)
    {
        try { await call(); }
        catch (RpcException) { }
    }
}
