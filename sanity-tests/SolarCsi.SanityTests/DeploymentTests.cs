using System.Diagnostics;

namespace SolarCsi.SanityTests;

[Collection(ClusterCollection.Name)]
public sealed class DeploymentTests(ClusterFixture fx)
{
    [Fact]
    public void SocketsAreReachableOnlyByTheirOwner()
    {
        var sockets = new[] { Path.Combine(fx.Cluster.Root, "controller", "csi.sock"), Path.Combine(fx.A.Directory, "csi.sock") };
        Assert.All(sockets, s => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(s)));
    }

    [Fact]
    public async Task ReadmeDemoWalksAVolumeAndLeavesNothingBehind()
    {
        var solar = SolarCsi.Local.BinaryLocator.Find().Cli ?? throw new FileNotFoundException("the solar CLI was not built");
        var info = new ProcessStartInfo(solar, ["demo"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        var output = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, output);
        Assert.Contains("checksum matches", output);
        Assert.Contains("nothing left behind", output);
        Assert.Contains("demo passed", output);
    }
}
