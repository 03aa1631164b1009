using System.Diagnostics;
using System.Text.Json;

namespace SolarCsi.SanityTests;

/// <summary>The `solar` operator commands against the running plugins and a node's real state directory.</summary>
[Collection(ClusterCollection.Name)]
public sealed class OperatorCliTests(ClusterFixture fx)
{
    private string ControllerSocket => $"unix://{fx.Cluster.Root}/controller/csi.sock";
    private string NodeState => Path.Combine(fx.A.Directory, "state");

    [Fact]
    public async Task VolumesShowsWhereEachVolumeIsAttached()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            await steps.ControllerPublishAsync();
            using var json = JsonDocument.Parse(await SolarAsync("volumes", "--controller", ControllerSocket, "--output", "json"));
            var row = json.RootElement.EnumerateArray().Single(r => r.GetProperty("volumeId").GetString() == volume.VolumeId);
            Assert.Equal(["node-a"], row.GetProperty("publishedNodes").EnumerateArray().Select(n => n.GetString()));
            Assert.Equal("file", row.GetProperty("media").GetString());
            Assert.Equal(volume.CapacityBytes, row.GetProperty("capacityBytes").GetInt64());
            Assert.Contains(volume.VolumeId, await SolarAsync("volumes", "--controller", ControllerSocket));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task NodeStateFlagsResidueAndCleanupRemovesItOnlyWhenAsked()
    {
        var capability = ClusterFixture.Block();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            await steps.StageAsync();
            using (var healthy = JsonDocument.Parse(await SolarAsync("node-state", "--state-dir", NodeState, "--output", "json")))
            {
                var state = healthy.RootElement.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("volumeId").GetString() == volume.VolumeId);
                Assert.Equal("Staged", state.GetProperty("phase").GetString());
                Assert.True(state.GetProperty("deviceAttached").GetBoolean());
                Assert.DoesNotContain(healthy.RootElement.GetProperty("findings").EnumerateArray(), f => f.GetProperty("volumeId").GetString() == volume.VolumeId);
            }

            // The plugin is stopped and loses the volume's journal entry: its loop device is residue now.
            await fx.Cluster.StopNodeAsync(ClusterFixture.NodeA);
            File.Delete(Path.Combine(NodeState, "node", "journal", volume.VolumeId + ".json"));
            using (var broken = JsonDocument.Parse(await SolarAsync("node-state", "--state-dir", NodeState, "--output", "json")))
            {
                var finding = broken.RootElement.GetProperty("findings").EnumerateArray().Single(f => f.GetProperty("volumeId").GetString() == volume.VolumeId);
                Assert.Equal("residual-loop", finding.GetProperty("kind").GetString());
            }
            // A dry run changes nothing.
            Assert.Contains("dry run", await SolarAsync("cleanup", "--state-dir", NodeState));
            Assert.Single((await fx.Cluster.FindLeftoversAsync()).LoopDevices);
            using (var applied = JsonDocument.Parse(await SolarAsync("cleanup", "--state-dir", NodeState, "--apply", "--output", "json")))
                Assert.Contains(applied.RootElement.EnumerateArray(), s => s.GetString()!.StartsWith("detach-loop /dev/loop", StringComparison.Ordinal));
            Assert.Empty((await fx.Cluster.FindLeftoversAsync()).LoopDevices);
            Assert.Contains("nothing to clean up", await SolarAsync("cleanup", "--state-dir", NodeState, "--apply"));
        }
        finally
        {
            await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA);
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [Fact]
    public async Task CallMakesAnyCsiRpcByHand()
    {
        var nodeSocket = $"unix://{fx.A.Directory}/csi.sock";
        using var info = JsonDocument.Parse(await SolarAsync("call", "--endpoint", nodeSocket, "NodeGetInfo"));
        Assert.Equal("node-a", info.RootElement.GetProperty("nodeId").GetString());
        var (code, _, error) = await RunAsync("call", "--endpoint", ControllerSocket, "DeleteVolume", "{\"volumeId\": \"\"}");
        Assert.Equal(1, code);
        Assert.Contains("InvalidArgument", error);
        Assert.Equal(2, (await RunAsync("call", "--endpoint", nodeSocket, "NoSuchMethod")).Code);
    }

    internal static async Task<string> SolarAsync(params string[] args)
    {
        var (code, output, error) = await RunAsync(args);
        Assert.True(code == 0, $"solar {string.Join(' ', args)} exited {code}: {error}");
        return output;
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        var solar = SolarCsi.Local.BinaryLocator.Find().Cli ?? throw new FileNotFoundException("the solar CLI was not built");
        using var process = Process.Start(new ProcessStartInfo(solar, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
