using Grpc.Core;
using SolarCsi.Core.Hosting;
using SolarCsi.DataPlane.V1;
using SolarCsi.Node;
using SolarCsi.Node.DataPlane;

namespace SolarCsi.Tests.Node;

/// <summary>The data-plane host starts only the NBD helpers, with their logs in the node's state directory.</summary>
public sealed class DataPlaneTests
{
    private const string StateDir = "/var/lib/solar-csi";

    private static StartRequest Request(string program = "nbdkit", string log = StateDir + "/exports/v/nbdkit.log", params string[] args) =>
        new() { Program = program, LogFile = log, Args = { args } };

    [Theory]
    [InlineData("nbdkit")]
    [InlineData("nbdfuse")]
    public void TheNbdHelpersAreStarted(string program) =>
        DataPlaneService.Validate(Request(program, StateDir + "/node/nbd/v/x.log", "--pidfile", StateDir + "/p"), StateDir);

    [Theory]
    [InlineData("sh")]
    [InlineData("/usr/sbin/nbdkit")]
    [InlineData("losetup")]
    [InlineData("")]
    public void AnyOtherProgramIsRefused(string program)
    {
        var e = Assert.Throws<RpcException>(() => DataPlaneService.Validate(Request(program), StateDir));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
    }

    [Theory]
    [InlineData("")]
    [InlineData("exports/v/nbdkit.log")]
    [InlineData("/etc/cron.d/x")]
    [InlineData(StateDir + "/../../etc/passwd")]
    [InlineData(StateDir + "-other/x.log")]
    [InlineData(StateDir)]
    public void ALogOutsideTheStateDirectoryIsRefused(string log)
    {
        var e = Assert.Throws<RpcException>(() => DataPlaneService.Validate(Request(log: log), StateDir));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
    }

    [Fact]
    public void AbsurdArgumentListsAreRefused()
    {
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() =>
            DataPlaneService.Validate(Request(args: [.. Enumerable.Repeat("x", DataPlaneService.MaxArguments + 1)]), StateDir)).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() =>
            DataPlaneService.Validate(Request(args: ["a\0b"]), StateDir)).StatusCode);
    }

    [Theory]
    [InlineData("tcp://127.0.0.1:9000")]
    [InlineData("tcp://0.0.0.0:9000")]
    public void TheDataPlaneEndpointIsAUnixSocketOnly(string endpoint)
    {
        var cl = new CommandLine(["--endpoint", "unix:///tmp/csi.sock", "--node-id", "n1", "--dataplane-endpoint", endpoint], NodeOptions.Flags);
        Assert.Contains("unix://", Assert.Throws<FormatException>(() => NodeOptions.Parse(cl)).Message);
    }

    [Fact]
    public async Task TheHostRefusesToListenOnTheNetwork() =>
        Assert.Equal(2, await DataPlaneHost.RunAsync(["--endpoint", "tcp://127.0.0.1:9000"]));
}
