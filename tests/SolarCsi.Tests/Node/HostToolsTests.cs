using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Hosting;
using SolarCsi.Node;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Node;

/// <summary>A missing host program is named with its package; a pool that needs one is announced unavailable.</summary>
public sealed class HostToolsTests : IDisposable
{
    private const string Absent = "solar-no-such-tool";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void AMissingProgramIsFailedPreconditionNamingItsPackage()
    {
        Assert.NotNull(HostTools.Locate("sh"));
        Assert.Equal([Absent], HostTools.MissingOf(["sh", Absent, Absent]));
        var e = Assert.Throws<RpcException>(() => HostTools.Require("nbdfuse-that-is-not-there"));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal("host tool 'nbdkit' is not installed on this node: install the Debian package 'nbdkit'", HostTools.Missing("nbdkit").Status.Detail);
        Assert.Equal("nbdfuse (Debian package libnbd-bin), losetup (Debian package mount)", HostTools.Describe(["nbdfuse", "losetup"]));
    }

    [Fact]
    public async Task TheRunnerRefusesAMissingProgramBeforeItStartsAnything()
    {
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var e = await Assert.ThrowsAsync<RpcException>(() => runner.RunAsync(Absent, ["--version"], CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains(Absent, e.Status.Detail);
    }

    [Fact]
    public async Task APoolWhoseToolIsMissingHasNoCapacityAndRefusesCreates()
    {
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var ledger = new CapacityLedger(_dir.Path, 1L << 30);
        FilePool Pool(string media, string tool) => new(media, "default", Path.Combine(_dir.Path, media), ledger, [tool], runner, new LoopDevices(runner),
            (_, _) => throw new InvalidOperationException("no quiesce here"), NullLogger.Instance);
        var broken = Pool("nbd", Absent);
        var working = Pool("file", "sh");
        var pools = new PoolSet("n1", [working, broken]);

        Assert.Null(pools.Unavailable(working));
        Assert.Equal(1L << 30, pools.Describe(working).FreeBytes);
        var info = pools.Describe(broken);
        Assert.Equal((0L, 0L, 0L), (info.TotalBytes, info.FreeBytes, info.LargestFreeBytes));
        Assert.Equal($"nbd pool 'default' on node n1 needs {Absent} (Debian package {Absent}), not installed", info.Unavailable);
        Assert.Equal(StatusCode.FailedPrecondition, Assert.Throws<RpcException>(() => pools.RequireAvailable(broken)).StatusCode);
        Assert.Same(working, pools.RequireAvailable(working));

        // Installing the program brings the pool back without a restart.
        var bin = Path.Combine(_dir.Path, "bin");
        Directory.CreateDirectory(bin);
        await File.WriteAllTextAsync(Path.Combine(bin, Absent), "#!/bin/sh\n");
        File.SetUnixFileMode(Path.Combine(bin, Absent), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        Assert.NotNull(HostTools.Locate(Path.Combine(bin, Absent)));
        var installed = Pool("nbd", Path.Combine(bin, Absent));
        Assert.Null(new PoolSet("n1", [installed]).Unavailable(installed));
    }

    [Fact]
    public void AllInOneModeKeepsTheAgentAndTheRegistryOnUnixSocketsInTheStateDir()
    {
        NodeOptions Parse(params string[] extra) => NodeOptions.Parse(new CommandLine(
            ["--endpoint", "unix:///run/solar/csi.sock", "--state-dir", "/var/lib/solar-edge", "--node-id", "edge-1", .. extra], NodeOptions.Flags));

        var node = Parse();
        Assert.False(node.AllInOne);
        Assert.Null(node.ControllerEndpoint);
        var aio = Parse("--mode", "all-in-one");
        Assert.True(aio.AllInOne);
        Assert.Equal("/var/lib/solar-edge/registry.sock", aio.ControllerEndpoint!.SocketPath);
        Assert.Equal("/var/lib/solar-edge/agent.sock", aio.AgentEndpoint.SocketPath);
        Assert.Contains("unix socket", Assert.Throws<FormatException>(() => Parse("--mode", "all-in-one", "--agent-endpoint", "tcp://0.0.0.0:9871")).Message);
        Assert.Contains("registry", Assert.Throws<FormatException>(() => Parse("--mode", "all-in-one", "--controller-endpoint", "tcp://127.0.0.1:9870")).Message);
        Assert.Contains("--mode must be", Assert.Throws<FormatException>(() => Parse("--mode", "controller")).Message);
    }
}
