using Grpc.Core;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Staging;

namespace SolarCsi.Tests.Node;

/// <summary>NodeStage's first step on its own: where a volume's data comes from, asked of its medium.</summary>
public sealed class VolumeSourcesTests
{
    private const string Remote = "nbd~default~host~v000000000000000000000001";
    private const string Local = "file~default~n1~v000000000000000000000002";

    private static StageRequest Stage(string volumeId, IReadOnlyDictionary<string, string> context) =>
        new(volumeId, "/staging", Block: false, "ext4", [], context);

    [Fact]
    public async Task ARemoteVolumeComesFromItsPublishContextAndLeavesNoKeyBehind()
    {
        using var dir = new TempDir();
        var sources = new VolumeSources(new PoolSet("n1", []), dir.Path);
        var key = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var context = new NbdConnection("127.0.0.1", 10809, "n1", key, ReadOnly: true).ToContext();

        var (source, readOnly) = await sources.PrepareAsync(Stage(Remote, context), CancellationToken.None);
        Assert.True(readOnly);
        Assert.Equal(Path.Combine(dir.Path, Remote), source);
        var psk = Path.Combine(source, "client.psk");
        Assert.Equal($"n1:{key}\n", await File.ReadAllTextAsync(psk));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(psk));
        Assert.Equal(source, sources.Find(Remote));

        sources.Forget(Remote);
        Assert.False(Directory.Exists(source));
        Assert.Null(sources.Find(Remote));
    }

    [Fact]
    public async Task APublishContextForAnotherNodeOrALocalVolumeNotHereIsRefused()
    {
        using var dir = new TempDir();
        var sources = new VolumeSources(new PoolSet("n1", []), dir.Path);
        var otherNode = new NbdConnection("127.0.0.1", 10809, "n2", new string('a', 64), ReadOnly: false).ToContext();
        Assert.Equal(StatusCode.InvalidArgument,
            (await Assert.ThrowsAsync<RpcException>(() => sources.PrepareAsync(Stage(Remote, otherNode), CancellationToken.None))).StatusCode);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
        // A local volume comes from its pool on this node only.
        Assert.Equal(StatusCode.NotFound,
            (await Assert.ThrowsAsync<RpcException>(() => sources.PrepareAsync(Stage(Local, new Dictionary<string, string>()), CancellationToken.None))).StatusCode);
        Assert.Null(sources.Find(Local));
    }
}
