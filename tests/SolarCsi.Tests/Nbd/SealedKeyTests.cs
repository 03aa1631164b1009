using Grpc.Core;
using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Node.Nbd;

namespace SolarCsi.Tests.Nbd;

public sealed class SealedKeyTests : IDisposable
{
    private readonly TempDir _dir = new();
    private const string Key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    public SealedKeyTests()
    {
        CertificateAuthority.Create(Path.Combine(_dir.Path, "ca"), TimeSpan.FromDays(1));
        foreach (var node in new[] { "node-a", "node-b" })
            CertificateAuthority.Issue(Path.Combine(_dir.Path, "ca"), ClusterTls.NodeIdentity(node), Path.Combine(_dir.Path, node), TimeSpan.FromDays(1));
    }

    public void Dispose() => _dir.Dispose();

    private ClusterTls Node(string node) => ClusterTls.Load(Path.Combine(_dir.Path, node));

    [Fact]
    public void OnlyTheNodeItWasSealedForOpensItForThatVolume()
    {
        var sealedKey = SealedKey.Seal(Key, Node("node-a").Own, "nbd~default~s~v1", "node-a");
        Assert.DoesNotContain(Key, sealedKey);
        Assert.Equal(Key, SealedKey.Unseal(sealedKey, Node("node-a").Own, "nbd~default~s~v1", "node-a"));

        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => SealedKey.Unseal(sealedKey, Node("node-b").Own, "nbd~default~s~v1", "node-a")).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => SealedKey.Unseal(sealedKey, Node("node-a").Own, "nbd~default~s~v2", "node-a")).StatusCode);
        var tampered = sealedKey[..^2] + (sealedKey[^2] == 'A' ? "B" : "A") + sealedKey[^1];
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => SealedKey.Unseal(tampered, Node("node-a").Own, "nbd~default~s~v1", "node-a")).StatusCode);
    }

    [Fact]
    public void APublishContextCarriesTheSealedKeyInsteadOfTheKey()
    {
        var connection = new NbdConnection("10.0.0.5", 10809, "node-a", Key, ReadOnly: false);
        var context = connection.ToContext(SealedKey.Seal(Key, Node("node-a").Own, "v", "node-a"));
        Assert.DoesNotContain(context.Values, v => v.Contains(Key, StringComparison.Ordinal));
        var opened = NbdConnection.Unsealed(context, s => SealedKey.Unseal(s, Node("node-a").Own, "v", "node-a"));
        Assert.Equal(connection, NbdConnection.FromContext(opened));
        Assert.Throws<RpcException>(() => NbdConnection.Unsealed(context, unseal: null));
    }
}
