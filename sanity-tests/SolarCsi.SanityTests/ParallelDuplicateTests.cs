using Csi.V1;
using Grpc.Core;

namespace SolarCsi.SanityTests;

/// <summary>
/// Every call of a volume's life sent ten times at once, as an impatient CO does: each answer is OK or ABORTED,
/// and the end state is exactly what one call would have produced.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ParallelDuplicateTests(ClusterFixture fx)
{
    private static async Task<StatusCode[]> TenAtOnceAsync(Func<Task> call) =>
        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Expect.OutcomeAsync(call())));

    private static void OkOrAborted(StatusCode[] codes, string what)
    {
        Assert.All(codes, c => Assert.True(c is StatusCode.OK or StatusCode.Aborted, $"{what}: {c}"));
        Assert.Contains(StatusCode.OK, codes);
    }

    /// <summary>Like kubelet: repeats ABORTED until the call goes through.</summary>
    private static async Task UntilDoneAsync(Func<Task> call)
    {
        for (var i = 0; ; i++)
        {
            try { await call(); return; }
            catch (RpcException e) when (e.StatusCode == StatusCode.Aborted && i < 50) { await Task.Delay(100); }
        }
    }

    [Fact]
    public async Task TenParallelCopiesOfEachCallLeaveOneResult()
    {
        var request = ClusterFixture.NewVolume(bytes: 32 << 20);
        var created = await TenAtOnceAsync(() => fx.Controller.CreateVolumeAsync(request).ResponseAsync);
        OkOrAborted(created, "CreateVolume");
        var volume = await fx.CreateAsync(request);
        Assert.Single((await fx.Controller.ListVolumesAsync(new ListVolumesRequest())).Entries, e => e.Volume.VolumeId == volume.VolumeId);
        var steps = new NodeSteps(fx, volume, ClusterFixture.Mount());
        try
        {
            Directory.CreateDirectory(steps.Staging);
            Directory.CreateDirectory(Path.GetDirectoryName(steps.Target)!);
            OkOrAborted(await TenAtOnceAsync(() => steps.ControllerPublishAsync()), "ControllerPublishVolume");
            OkOrAborted(await TenAtOnceAsync(() => steps.Node.NodeStageVolumeAsync(steps.StageRequest()).ResponseAsync), "NodeStageVolume");
            await UntilDoneAsync(() => steps.Node.NodeStageVolumeAsync(steps.StageRequest()).ResponseAsync);
            OkOrAborted(await TenAtOnceAsync(() => steps.Node.NodePublishVolumeAsync(steps.PublishRequest()).ResponseAsync), "NodePublishVolume");
            await UntilDoneAsync(() => steps.Node.NodePublishVolumeAsync(steps.PublishRequest()).ResponseAsync);
            var mounts = (await fx.Cluster.FindLeftoversAsync()).Mounts;
            Assert.Single(mounts, m => m == steps.Staging);
            Assert.Single(mounts, m => m == steps.Target);
            Assert.Single((await fx.Cluster.FindLeftoversAsync()).LoopDevices);

            OkOrAborted(await TenAtOnceAsync(() => steps.UnpublishAsync()), "NodeUnpublishVolume");
            await UntilDoneAsync(() => steps.UnpublishAsync());
            OkOrAborted(await TenAtOnceAsync(() => steps.UnstageAsync()), "NodeUnstageVolume");
            await UntilDoneAsync(() => steps.UnstageAsync());
            Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
            OkOrAborted(await TenAtOnceAsync(() => steps.ControllerUnpublishAsync()), "ControllerUnpublishVolume");
            await UntilDoneAsync(() => steps.ControllerUnpublishAsync());
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            OkOrAborted(await TenAtOnceAsync(() => fx.DeleteAsync(volume.VolumeId)), "DeleteVolume");
            await UntilDoneAsync(() => fx.DeleteAsync(volume.VolumeId));
        }
        Assert.DoesNotContain((await fx.Controller.ListVolumesAsync(new ListVolumesRequest())).Entries, e => e.Volume.VolumeId == volume.VolumeId);
    }
}
