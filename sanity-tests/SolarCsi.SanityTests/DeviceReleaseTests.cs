using Csi.V1;
using Grpc.Core;

namespace SolarCsi.SanityTests;

/// <summary>
/// NodeUnstage answers OK only when the volume's device is really released. A loop device that something still holds
/// open is only marked to clear at its last close; an unstage that answered OK then let DeleteVolume, sent right after,
/// fail with "still attached" (5 of 100 volumes in bench-lifecycle at 8 in flight).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DeviceReleaseTests(ClusterFixture fx)
{
    [Fact]
    public async Task UnstageWaitsForTheDeviceToBeReleasedSoTheDeleteRightAfterItSucceeds()
    {
        var (volume, steps, device) = await StagedAsync();
        try
        {
            var holder = new FileStream(device, FileMode.Open, FileAccess.Read);
            var release = Task.Run(async () => { await Task.Delay(1500); await holder.DisposeAsync(); });
            await steps.UnstageAsync();
            // OK means released: the image is bound to no loop device any more when the answer arrives.
            Assert.Equal("", HostCommand.Run("losetup", "--noheadings", "--output", "NAME", "--associated", ImageOf(volume)).Trim());
            await release;
            await steps.ControllerUnpublishAsync();
            await fx.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task ADeviceHeldOpenPastTheWaitIsUnavailableAndTheRetryFinishes()
    {
        var (volume, steps, device) = await StagedAsync();
        try
        {
            await using (new FileStream(device, FileMode.Open, FileAccess.Read))
            {
                var refused = await Expect.Code(StatusCode.Unavailable, async () => await steps.Node.NodeUnstageVolumeAsync(
                    new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = steps.Staging }));
                Assert.Contains("still holds it open", refused.Status.Detail);
                // Nothing was promised, so the volume cannot be deleted under the holder either.
                await steps.ControllerUnpublishAsync();
                await Expect.Code(StatusCode.FailedPrecondition, async () => await fx.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId }));
            }
            await steps.UnstageAsync();
            await fx.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
            Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    private string ImageOf(Volume volume) => Path.ChangeExtension(fx.RecordOf(volume.VolumeId), ".img");

    private async Task<(Volume Volume, NodeSteps Steps, string Device)> StagedAsync()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(16L << 20, capability));
        var steps = new NodeSteps(fx, volume, capability);
        await steps.ControllerPublishAsync();
        await steps.StageAsync();
        var device = HostCommand.Run("losetup", "--noheadings", "--output", "NAME", "--associated", ImageOf(volume)).Trim();
        Assert.StartsWith("/dev/loop", device);
        return (volume, steps, device);
    }
}
