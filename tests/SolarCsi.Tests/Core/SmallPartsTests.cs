using Grpc.Core;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Storage;
using SolarCsi.Core.Validation;

namespace SolarCsi.Tests.Core;

public sealed class SmallPartsTests
{
    [Fact]
    public void InFlightTrackerAbortsASecondOperationUntilTheFirstEnds()
    {
        var tracker = new InFlightTracker();
        var first = tracker.Acquire("vol-1", "NodeStageVolume");
        var e = Assert.Throws<RpcException>(() => tracker.Acquire("vol-1", "NodeUnstageVolume"));
        Assert.Equal(StatusCode.Aborted, e.StatusCode);
        Assert.Contains("NodeStageVolume", e.Status.Detail);
        using (tracker.Acquire("vol-2", "NodeStageVolume")) Assert.Equal(2, tracker.Count);
        first.Dispose();
        first.Dispose();
        using (tracker.Acquire("vol-1", "NodeUnstageVolume")) Assert.Equal(1, tracker.Count);
        Assert.Equal(0, tracker.Count);
    }

    [Fact]
    public async Task AtomicFileReplacesWholeAndLeavesNoTempFiles()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        try
        {
            var path = Path.Combine(dir, "sub", "state.json");
            await AtomicFile.WriteAsync(path, "first"u8.ToArray(), CancellationToken.None);
            await AtomicFile.WriteAsync(path, "second"u8.ToArray(), CancellationToken.None);
            Assert.Equal("second", await File.ReadAllTextAsync(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
            AtomicFile.Delete(path);
            AtomicFile.Delete(path);
            Assert.False(File.Exists(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("1073741824", 1L << 30)]
    [InlineData("512Mi", 512L << 20)]
    [InlineData("20Gi", 20L << 30)]
    [InlineData("10G", 10_000_000_000)]
    public void ParsesQuantities(string text, long bytes) => Assert.Equal(bytes, Quantity.Parse(text));

    [Theory]
    [InlineData("-1")]
    [InlineData("1.5Gi")]
    [InlineData("lots")]
    [InlineData("99999999999Ti")]
    public void RejectsBadQuantities(string text) => Assert.Throws<FormatException>(() => Quantity.Parse(text));

    [Fact]
    public void ParsesEndpoints()
    {
        Assert.Equal("/run/csi/csi.sock", GrpcEndpoint.Parse("unix:///run/csi/csi.sock").SocketPath);
        var tcp = GrpcEndpoint.Parse("tcp://127.0.0.1:10000");
        Assert.Equal((System.Net.IPAddress.Loopback, 10000), (tcp.Address, tcp.Port));
        Assert.Equal("tcp://[::1]:5", GrpcEndpoint.Parse("tcp://[::1]:5").ToString());
        Assert.Throws<FormatException>(() => GrpcEndpoint.Parse("unix://relative.sock"));
        Assert.Throws<FormatException>(() => GrpcEndpoint.Parse("tcp://127.0.0.1"));
        Assert.Throws<FormatException>(() => GrpcEndpoint.Parse("http://x"));
    }

    [Fact]
    public void CommandLineRefusesUnknownFlags()
    {
        var known = new Dictionary<string, string> { ["endpoint"] = "", ["allowed-root"] = "" };
        var cl = new CommandLine(["--endpoint", "unix:///a", "--allowed-root=/x", "--allowed-root", "/y"], known);
        Assert.Equal("unix:///a", cl.Get("endpoint"));
        Assert.Equal(["/x", "/y"], cl.GetAll("allowed-root"));
        Assert.Throws<FormatException>(() => new CommandLine(["--endpiont", "x"], known));
        Assert.Throws<FormatException>(() => new CommandLine(["--endpoint"], known));
    }

    [Theory]
    [InlineData("solar.csi.dev", true)]
    [InlineData("-bad", false)]
    [InlineData("bad_name", false)]
    public void ValidatesDriverNames(string name, bool valid)
    {
        if (valid) Assert.Equal(name, CsiDriverName.Require(name));
        else Assert.Throws<FormatException>(() => CsiDriverName.Require(name));
    }

    [Fact]
    public void CsiNamesRejectControlCharactersAndOverlongNames()
    {
        Assert.Equal("pvc-ünïcode", NameRules.RequireCsiName("pvc-ünïcode"));
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => NameRules.RequireCsiName("a\u0001b")).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => NameRules.RequireCsiName(new string('x', 129))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => NameRules.RequireCsiName("")).StatusCode);
    }
}
