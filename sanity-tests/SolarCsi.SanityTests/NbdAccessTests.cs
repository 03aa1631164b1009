using System.Net;
using System.Net.Sockets;
using Csi.V1;
using SolarCsi.Node.Nbd;

namespace SolarCsi.SanityTests;

/// <summary>
/// Who can reach an NBD export, checked at the export itself: only from the addresses the controller knows the
/// admitted node by (every node of this cluster is 127.0.0.1; a stranger on 127.0.0.2 holding the right key is still
/// refused), and a key only where the data path needs it — sealed for another node, nowhere in publish_context for the
/// storage host itself.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class NbdAccessTests(ClusterFixture fx)
{
    /// <summary>The first bytes a TCP client from <paramref name="source"/> gets: nbdkit's greeting, or nothing when it is refused.</summary>
    private static async Task<string> GreetingFromAsync(IPAddress source, int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(source, 0));
        await socket.ConnectAsync(IPAddress.Loopback, port);
        var buffer = new byte[8];
        var read = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token);
            if (n == 0) break;
            read += n;
        }
        return System.Text.Encoding.ASCII.GetString(buffer, 0, read);
    }

    [Fact]
    public async Task AnExportAnswersOnlyTheAddressesItsAdmittedNodesHave()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolumeOf("nbd", 64 << 20, capability));
        var steps = new NodeSteps(fx, volume, capability, fx.ConsumerAcross(volume));
        try
        {
            await steps.ControllerPublishAsync();
            var port = int.Parse(steps.PublishContext[NbdConnection.PortKey], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(["127.0.0.1"], await File.ReadAllLinesAsync(Path.Combine(fx.Cluster.ExportDirOf(volume.VolumeId), "peers")));
            Assert.Equal("NBDMAGIC", await GreetingFromAsync(IPAddress.Loopback, port));
            // Another address gets no greeting at all: refused before TLS, whatever key it holds.
            Assert.Equal("", await GreetingFromAsync(IPAddress.Parse("127.0.0.2"), port));

            // The admitted node attaches from its address and moves bytes.
            await steps.AttachAsync();
            await File.WriteAllTextAsync(Path.Combine(steps.Target, "hello"), "through the filter");
            Assert.Equal("through the filter", await File.ReadAllTextAsync(Path.Combine(steps.Target, "hello")));
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task TheStorageHostReadsItsOwnKeyAndAnotherNodeGetsItSealed()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolumeOf("nbd", 64 << 20, capability));
        var host = Core.Ids.StorageId.ParseVolume(volume.VolumeId).Node;
        var local = new NodeSteps(fx, volume, capability, fx.Cluster.Nodes.Single(n => n.NodeId == host));
        try
        {
            await local.ControllerPublishAsync();
            var key = fx.Cluster.NbdKeyOf(volume.VolumeId, host);
            Assert.Equal("true", local.PublishContext[NbdConnection.LocalPskKey]);
            Assert.DoesNotContain(NbdConnection.PskKey, local.PublishContext.Keys);
            Assert.DoesNotContain(NbdConnection.SealedPskKey, local.PublishContext.Keys);
            Assert.DoesNotContain(local.PublishContext.Values, v => v.Contains(key, StringComparison.OrdinalIgnoreCase));
            // The same call again: the same answer, and still no key.
            await local.ControllerPublishAsync();
            Assert.Equal("true", local.PublishContext[NbdConnection.LocalPskKey]);
            await local.AttachAsync();
            await File.WriteAllTextAsync(Path.Combine(local.Target, "x"), "local");
            await local.UnpublishAsync();
            await local.UnstageAsync();
            await local.ControllerUnpublishAsync();

            // Once unpublished, a stage that says "the key is here" finds none: the node is no longer admitted.
            await Expect.Code(Grpc.Core.StatusCode.FailedPrecondition, async () => await local.Node.NodeStageVolumeAsync(local.StageRequest()));
        }
        finally
        {
            await local.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }
}
