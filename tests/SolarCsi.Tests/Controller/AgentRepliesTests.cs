using Grpc.Core;
using SolarCsi.Agent.V1;
using SolarCsi.Controller.Agents;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Validation;

namespace SolarCsi.Tests.Controller;

public sealed class AgentRepliesTests
{
    private static readonly StorageId Asked = StorageId.ForVolume("file", "default", "node-a", "pvc-1");

    private static VolumeInfo Volume(StorageId id, params (string Key, string Value)[] context)
    {
        var v = new VolumeInfo { VolumeId = id.ToString(), Name = "pvc-1" };
        v.VolumeContext.Add(new Dictionary<string, string> { [VolumeContextKeys.Media] = id.Media, [VolumeContextKeys.Pool] = id.Pool });
        foreach (var (key, value) in context) v.VolumeContext[key] = value;
        return v;
    }

    [Fact]
    public void WhatTheNodeHoldsAndWasAskedForPasses()
    {
        var v = Volume(Asked, (VolumeContextKeys.MkfsOptions, "-m 0"));
        Assert.Same(v, AgentReplies.RequireVolume(v, "node-a", Asked));
    }

    [Fact]
    public void AnAnswerThatIsNotTheNodesOwnOrNotWhatWasAskedIsRefused()
    {
        var cases = new (VolumeInfo Volume, string Why)[]
        {
            (Volume(StorageId.ForVolume("file", "default", "node-b", "pvc-1")), "names node node-b"),
            (Volume(StorageId.ForVolume("file", "default", "node-a", "pvc-2")), "for"),
            (new VolumeInfo { VolumeId = "../../etc" }, "not one"),
            (Volume(Asked, ("csi.storage.k8s.io/pod.name", "x")), "volume_context key"),
            (Volume(Asked, (VolumeContextKeys.Media, "nbd")), "media"),
            (Volume(Asked, (VolumeContextKeys.MkfsOptions, "-L $(reboot)")), "mkfs options"),
        };
        foreach (var (volume, why) in cases)
        {
            var e = Assert.Throws<RpcException>(() => AgentReplies.RequireVolume(volume, "node-a", Asked));
            Assert.Equal(StatusCode.Internal, e.StatusCode);
            Assert.Contains(why, e.Status.Detail);
        }
    }
}
