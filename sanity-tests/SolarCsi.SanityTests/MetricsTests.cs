using System.Net.Http;

namespace SolarCsi.SanityTests;

/// <summary>Prometheus scrapes both plugins and sees real operations: their latency, the node's pools and attachments.</summary>
[Collection(ClusterCollection.Name)]
public sealed class MetricsTests(ClusterFixture fx)
{
    [Fact]
    public async Task ARealOperationShowsUpInLatencyPoolAndAttachmentMetrics()
    {
        var node = fx.A.MetricsUrl;
        var controller = fx.Cluster.Controller.MetricsUrl;
        const string stageOk = "csi_operation_duration_seconds_count{method=\"NodeStageVolume\",code=\"OK\"}";
        const string createOk = "csi_operation_duration_seconds_count{method=\"CreateVolume\",code=\"OK\"}";
        const string stageSum = "csi_operation_duration_seconds_sum{method=\"NodeStageVolume\",code=\"OK\"}";
        var stagesBefore = await MetricsScrape.ValueAsync(node, stageOk);
        var stageSecondsBefore = await MetricsScrape.ValueAsync(node, stageSum);
        var createsBefore = await MetricsScrape.ValueAsync(controller, createOk);

        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            await steps.StageAsync();
            var seenByCaller = watch.Elapsed.TotalSeconds;
            await steps.PublishAsync();
            var samples = await MetricsScrape.ReadAsync(node);
            Assert.Equal(stagesBefore + 1, samples[stageOk]);
            // The plugin recorded this stage's own duration: more than nothing, and no more than the caller waited.
            var recorded = samples[stageSum] - stageSecondsBefore;
            Assert.InRange(recorded, double.Epsilon, seenByCaller);
            Assert.Equal(samples[stageOk], samples["csi_operation_duration_seconds_bucket{method=\"NodeStageVolume\",code=\"OK\",le=\"+Inf\"}"]);
            Assert.Equal(1, samples[$"solar_volume_attachment_healthy{{volume_id=\"{volume.VolumeId}\",media=\"file\"}}"]);
            Assert.Equal(16L << 30, samples["solar_pool_capacity_bytes{media=\"file\",pool=\"default\"}"]);
            Assert.True(samples["solar_pool_free_bytes{media=\"file\",pool=\"default\"}"] <= (16L << 30) - volume.CapacityBytes);
            Assert.Equal(0, samples["csi_operations_in_flight{method=\"NodeStageVolume\"}"]);

            var controllerSamples = await MetricsScrape.ReadAsync(controller);
            Assert.Equal(createsBefore + 1, controllerSamples[createOk]);
            Assert.Equal(2, controllerSamples["solar_agents{state=\"live\"}"]);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.DoesNotContain((await MetricsScrape.ReadAsync(node)).Keys, k => k.Contains(volume.VolumeId, StringComparison.Ordinal));

        using var http = new HttpClient();
        Assert.Equal("ok\n", await http.GetStringAsync(node.Replace("/metrics", "/healthz")));
        Assert.Equal("ok\n", await http.GetStringAsync(controller.Replace("/metrics", "/healthz")));
    }
}
