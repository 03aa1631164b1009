using Csi.V1;
using SolarCsi.Node.Nbd;

namespace SolarCsi.SanityTests;

/// <summary>
/// An NBD key goes where the data path needs it and nowhere else: not into any plugin's log (ours or the helpers'),
/// not into any metrics endpoint, not into a status message. Read back after a volume's whole node life.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class KeyExposureTests(ClusterFixture fx)
{
    [Fact]
    public async Task NoLogNorMetricShowsAnNbdKey()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolumeOf("nbd", 64 << 20, capability));
        var steps = new NodeSteps(fx, volume, capability, fx.ConsumerAcross(volume));
        try
        {
            await steps.ControllerPublishAsync();
            // The key as the storage host keeps it: publish_context carries it only sealed to the consumer's certificate.
            var key = fx.Cluster.NbdKeyOf(volume.VolumeId, steps.NodeId);
            Assert.DoesNotContain(NbdConnection.PskKey, steps.PublishContext.Keys);
            Assert.Contains(NbdConnection.SealedPskKey, steps.PublishContext.Keys);
            Assert.DoesNotContain(steps.PublishContext.Values, v => v.Contains(key, StringComparison.OrdinalIgnoreCase));
            await steps.AttachAsync();
            await File.WriteAllTextAsync(Path.Combine(steps.Target, "x"), "x");
            var listed = await fx.Controller.ListVolumesAsync(new ListVolumesRequest());
            Assert.DoesNotContain(key, listed.ToString());
            Assert.Matches("^[0-9a-f]{64}$", key);

            // While attached, so the export's and the attachment's own logs are still there: every log the cluster's
            // plugins and their helpers wrote (nbdkit's on the storage host, nbdfuse's on the consumer).
            var logs = Directory.EnumerateFiles(fx.Cluster.Root, "*.log", SearchOption.AllDirectories).ToArray();
            Assert.Contains(logs, l => l.EndsWith("controller.log", StringComparison.Ordinal));
            Assert.Contains(logs, l => l.EndsWith("nbdkit.log", StringComparison.Ordinal) && l.Contains(volume.VolumeId, StringComparison.Ordinal));
            foreach (var log in logs)
                Assert.False((await File.ReadAllTextAsync(log)).Contains(key, StringComparison.OrdinalIgnoreCase), $"{log} shows the NBD key");
            using var http = new HttpClient();
            foreach (var url in fx.Cluster.Nodes.Select(n => n.MetricsUrl).Append(fx.Cluster.Controller.MetricsUrl))
                Assert.DoesNotContain(key, await http.GetStringAsync(url), StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }
}
