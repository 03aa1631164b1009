using Grpc.Core;
using SolarCsi.Node.Agent;
using SolarCsi.Node.Pools;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.Tests.Node;

public sealed class PublicationRulesTests
{
    private static PublicationRecord Pub(string node, AccessMode mode = AccessMode.SingleNodeWriter, bool ro = false) => new(node, ro, (int)mode, false);

    [Fact]
    public void RepeatedPublishIsANoOp() => Assert.Single(PublicationRules.Admit("v", [Pub("a")], Pub("a")));

    [Fact]
    public void SameNodeWithDifferentReadonlyIsAlreadyExists() =>
        Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => PublicationRules.Admit("v", [Pub("a")], Pub("a", ro: true))).StatusCode);

    [Fact]
    public void SingleNodeVolumeOnASecondNodeIsFailedPrecondition() =>
        Assert.Equal(StatusCode.FailedPrecondition, Assert.Throws<RpcException>(() => PublicationRules.Admit("v", [Pub("a")], Pub("b"))).StatusCode);

    [Fact]
    public void MultiNodeReadersShareButNotWithASingleNodeHolder()
    {
        Assert.Equal(2, PublicationRules.Admit("v", [Pub("a", AccessMode.MultiNodeReaderOnly, true)], Pub("b", AccessMode.MultiNodeReaderOnly, true)).Count);
        Assert.Throws<RpcException>(() => PublicationRules.Admit("v", [Pub("a")], Pub("b", AccessMode.MultiNodeReaderOnly, true)));
    }
}
