using Csi.V1;
using Grpc.Core;

namespace SolarCsi.SanityTests;

/// <summary>node-b runs with --max-volumes 4: NodeGetInfo says so, and ControllerPublish holds the line.</summary>
[Collection(ClusterCollection.Name)]
public sealed class AttachLimitTests(ClusterFixture fx)
{
    [Fact]
    public async Task PublishBeyondTheNodesLimitIsResourceExhaustedEvenWhenTheCallsRace()
    {
        Assert.Equal(ClusterFixture.NodeBMaxVolumes, (await fx.B.Node.NodeGetInfoAsync(new NodeGetInfoRequest())).MaxVolumesPerNode);
        var capability = ClusterFixture.Mount();
        var volumes = new List<Volume>();
        try
        {
            for (var i = 0; i <= ClusterFixture.NodeBMaxVolumes; i++)
            {
                volumes.Add(await fx.CreateAsync(ClusterFixture.NewVolumeOf("nbd", 16 << 20, capability)));
            }
            ControllerPublishVolumeRequest Publish(Volume v) => new() { VolumeId = v.VolumeId, NodeId = ClusterFixture.NodeB, VolumeCapability = capability };

            // One more publish than the limit, all at once: exactly one loses.
            var outcomes = await Task.WhenAll(volumes.Select(v => Expect.OutcomeAsync(fx.Controller.ControllerPublishVolumeAsync(Publish(v)).ResponseAsync)));
            Assert.Equal(ClusterFixture.NodeBMaxVolumes, outcomes.Count(o => o == StatusCode.OK));
            Assert.Equal(1, outcomes.Count(o => o == StatusCode.ResourceExhausted));
            var published = volumes.Where((_, i) => outcomes[i] == StatusCode.OK).ToList();
            var refused = volumes[Array.IndexOf(outcomes, StatusCode.ResourceExhausted)];

            // A repeat of a publish that holds a slot is not a new attachment.
            await fx.Controller.ControllerPublishVolumeAsync(Publish(published[0]));
            await Expect.Code(StatusCode.ResourceExhausted, async () => await fx.Controller.ControllerPublishVolumeAsync(Publish(refused)));

            // A slot freed is a slot taken.
            await fx.Controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = published[0].VolumeId, NodeId = ClusterFixture.NodeB });
            await fx.Controller.ControllerPublishVolumeAsync(Publish(refused));
        }
        finally
        {
            foreach (var v in volumes)
            {
                await fx.Controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = v.VolumeId, NodeId = ClusterFixture.NodeB });
                await fx.DeleteAsync(v.VolumeId);
            }
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }
}
