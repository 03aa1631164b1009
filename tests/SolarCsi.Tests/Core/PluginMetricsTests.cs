using SolarCsi.Core.Metrics;

namespace SolarCsi.Tests.Core;

public sealed class PluginMetricsTests
{
    [Fact]
    public async Task RendersThePrometheusTextFormat()
    {
        var metrics = new PluginMetrics();
        metrics.ObserveCall("NodeStageVolume", "OK", TimeSpan.FromMilliseconds(30));
        metrics.ObserveCall("NodeStageVolume", "OK", TimeSpan.FromSeconds(3));
        using (metrics.TrackInFlight("NodePublishVolume"))
        {
            metrics.CountReconcilerAction("detach-residual-loop");
            metrics.AddCollector(_ => Task.FromResult<IEnumerable<GaugeSample>>(
                [new GaugeSample("solar_pool_free_bytes", "free", [new("pool", "a\"b\\c\nd")], 1.5e9)]));
            var text = await metrics.RenderAsync(CancellationToken.None);
            var lines = text.Split('\n');
            Assert.Contains("# TYPE csi_operation_duration_seconds histogram", lines);
            Assert.Contains("csi_operation_duration_seconds_bucket{method=\"NodeStageVolume\",code=\"OK\",le=\"0.025\"} 0", lines);
            Assert.Contains("csi_operation_duration_seconds_bucket{method=\"NodeStageVolume\",code=\"OK\",le=\"0.05\"} 1", lines);
            Assert.Contains("csi_operation_duration_seconds_bucket{method=\"NodeStageVolume\",code=\"OK\",le=\"5\"} 2", lines);
            Assert.Contains("csi_operation_duration_seconds_bucket{method=\"NodeStageVolume\",code=\"OK\",le=\"+Inf\"} 2", lines);
            Assert.Contains("csi_operation_duration_seconds_count{method=\"NodeStageVolume\",code=\"OK\"} 2", lines);
            Assert.Contains("csi_operation_duration_seconds_sum{method=\"NodeStageVolume\",code=\"OK\"} 3.03", lines);
            Assert.Contains("csi_operations_in_flight{method=\"NodePublishVolume\"} 1", lines);
            Assert.Contains("solar_reconciler_actions_total{action=\"detach-residual-loop\"} 1", lines);
            Assert.Contains("solar_pool_free_bytes{pool=\"a\\\"b\\\\c\\nd\"} 1500000000", lines);
        }
        Assert.Contains("csi_operations_in_flight{method=\"NodePublishVolume\"} 0", (await metrics.RenderAsync(CancellationToken.None)).Split('\n'));
    }

    [Theory]
    [InlineData("0.0.0.0:9808")]
    [InlineData("127.0.0.1:1")]
    [InlineData("[::1]:9808")]
    public void ParsesAddresses(string text) => Assert.NotNull(MetricsServer.ParseAddress(text));

    [Theory]
    [InlineData("9808")]
    [InlineData("localhost:9808")]
    [InlineData("0.0.0.0:0")]
    [InlineData("0.0.0.0:99999")]
    public void RefusesWhatIsNotAnAddressAndPort(string text) => Assert.Throws<FormatException>(() => MetricsServer.ParseAddress(text));
}
