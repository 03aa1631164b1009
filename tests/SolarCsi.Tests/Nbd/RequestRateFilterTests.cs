using System.Diagnostics;
using CliWrap;
using CliWrap.Buffered;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Local;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Nbd;

/// <summary>
/// Our nbdkit request-rate filter (native/nbdkit-iops-filter), loaded by a real nbdkit and driven by nbdcopy: its
/// limit file is re-read while serving, and a file that is missing or unreadable as a number leaves the limit as it
/// was rather than lifting it. The filter's debug lines show which limits it took up; times are lower bounds a limited
/// server cannot beat, or a comparison with the limited run.
/// </summary>
public sealed class RequestRateFilterTests
{
    private const int Requests = 64; // a 256 KiB export read in 4 KiB requests

    [SkippableFact]
    public async Task TheLimitFileIsReReadAndABadOneChangesNothing()
    {
        var filter = Path.Combine(Path.GetDirectoryName(BinaryLocator.FromCheckout().Node)!, NbdServerOptions.RequestRateFilterFile);
        Skip.IfNot(File.Exists(filter), $"{filter} was not built (nbdkit-plugin-dev missing; scripts/install-prereqs.sh installs it)");
        using var dir = new TempDir();
        var limit = Path.Combine(dir.Path, "iops");
        await File.WriteAllTextAsync(limit, "50\n");
        var port = LocalCluster.FreePort();
        var pidFile = Path.Combine(dir.Path, "nbdkit.pid");
        var launcher = new DaemonLauncher(new ProcessRunner(NullLogger<ProcessRunner>.Instance));
        // --verbose: the filter reports each limit it takes up as a debug line, the deterministic half of this test.
        var log = Path.Combine(dir.Path, "nbdkit.log");
        var pid = await launcher.StartAsync("nbdkit", ["--foreground", "--verbose", "--pidfile", pidFile, "--ipaddr", "127.0.0.1", "--port", port.ToString(),
            "--filter=" + filter, "pattern", "size=256K", "iops=0", "iops-file=" + limit], pidFile, log,
            TimeSpan.FromSeconds(10), CancellationToken.None);
        try
        {
            // 64 requests at 50/s, 5 of them as burst: at least (64 - 5) / 50 = 1.18 s, however fast the machine.
            Assert.Contains("request-rate limit now 50/s", await File.ReadAllTextAsync(log));
            var limited = await ReadAllAsync(port);
            Assert.True(limited >= TimeSpan.FromSeconds(1.1));

            await File.WriteAllTextAsync(limit, "fast\n");
            await Task.Delay(TimeSpan.FromSeconds(1.2));
            Assert.True(await ReadAllAsync(port) >= TimeSpan.FromSeconds(1.1), "a malformed limit file lifted the limit");

            File.Delete(limit);
            await Task.Delay(TimeSpan.FromSeconds(1.2));
            Assert.True(await ReadAllAsync(port) >= TimeSpan.FromSeconds(1.1), "a missing limit file lifted the limit");

            await File.WriteAllTextAsync(limit, "0\n");
            await Task.Delay(TimeSpan.FromSeconds(1.2));
            await ReadAllAsync(port); // the first request after a second re-reads the file
            var unlimited = await ReadAllAsync(port);
            var text = await File.ReadAllTextAsync(log);
            Assert.Contains("iops-file", text); // the malformed file was reported
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(text, "request-rate limit now 0/s"));
            // Relative to the limited run rather than an absolute time, so a loaded machine does not fail it.
            Assert.True(unlimited < limited / 2, $"with the limit lifted {Requests} requests took {unlimited.TotalSeconds:0.00} s (limited: {limited.TotalSeconds:0.00} s)");
        }
        finally
        {
            await Pid.StopAsync(pid, kill: true, TimeSpan.FromSeconds(5), CancellationToken.None);
        }
    }

    private static async Task<TimeSpan> ReadAllAsync(int port)
    {
        var clock = Stopwatch.StartNew();
        var result = await Cli.Wrap("nbdcopy").WithArguments(["--request-size=4096", "--connections=1", "--requests=1", $"nbd://127.0.0.1:{port}", "null:"])
            .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
        Assert.True(result.ExitCode == 0, result.StandardError);
        return clock.Elapsed;
    }
}
