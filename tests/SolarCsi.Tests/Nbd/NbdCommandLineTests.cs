using Grpc.Core;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Nbd;

public sealed class NbdCommandLineTests
{
    private static readonly string Key = new('a', 64);
    private static readonly NbdEndpoint Endpoint = new("10.0.0.5", 10809, "node-b", ReadOnly: false);

    private static Dictionary<string, string> Context(string host = "10.0.0.5", string port = "10809", string identity = "node-b", string? key = null,
        string readOnly = "false") => new NbdConnection("x", 1, "x", Key, false).ToContext().ToDictionary(kv => kv.Key, kv => kv.Key switch
        {
            NbdConnection.HostKey => host, NbdConnection.PortKey => port, NbdConnection.IdentityKey => identity,
            NbdConnection.PskKey => key ?? Key, _ => readOnly,
        });

    [Fact]
    public void PublishContextRoundTripsAndNeverPrintsTheKey()
    {
        var connection = new NbdConnection("storage-1.example", 10900, "node-b", Key, ReadOnly: true);
        Assert.Equal(connection, NbdConnection.FromContext(connection.ToContext()));
        Assert.DoesNotContain(Key, connection.ToString());
        Assert.Equal($"node-b:{Key}", connection.PskLine);
    }

    [Theory]
    [InlineData("evil host", "10809", "node-b", null, "false")]
    [InlineData("h;rm -rf /", "10809", "node-b", null, "false")]
    [InlineData("10.0.0.5", "0", "node-b", null, "false")]
    [InlineData("10.0.0.5", "70000", "node-b", null, "false")]
    [InlineData("10.0.0.5", "-1", "node-b", null, "false")]
    [InlineData("10.0.0.5", "10809", "../node", null, "false")]
    [InlineData("10.0.0.5", "10809", "node-b", "short", "false")]
    [InlineData("10.0.0.5", "10809", "node-b", null, "yes")]
    public void MalformedPublishContextIsInvalidArgument(string host, string port, string identity, string? key, string readOnly) =>
        Assert.Equal(StatusCode.InvalidArgument,
            Assert.Throws<RpcException>(() => NbdConnection.FromContext(Context(host, port, identity, key, readOnly))).StatusCode);

    [Fact]
    public void MissingPublishContextNamesTheKey()
    {
        var e = Assert.Throws<RpcException>(() => NbdConnection.FromContext(new Dictionary<string, string>()));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains(NbdConnection.HostKey, e.Status.Detail);
    }

    [Fact]
    public void ServerExportsWithTlsPskOnlyAndReadOnlyWhenAsked()
    {
        var record = new NbdExportRecord("nbd~default~n1~v000000000000000000000001", "/s/v.img", 10810, ReadOnly: true, ["node-b"]);
        Assert.Equal(
            ["--foreground", "--pidfile", "/e/nbdkit.pid", "--ipaddr", "127.0.0.1", "--port", "10810", "--tls=require", "--tls-psk=/e/keys.psk", "--threads=4",
             "--readonly", "--filter=rate", "file", "file=/s/v.img", "rate=1125899906842624", "rate-file=/e/rate"],
            NbdExports.ServerArguments(record, "127.0.0.1", "/e/keys.psk", "/e/nbdkit.pid", "/e/rate", null, "/e/iops"));
        Assert.DoesNotContain("--readonly", NbdExports.ServerArguments(record with { ReadOnly = false }, "127.0.0.1", "/e/keys.psk", "/e/nbdkit.pid", "/e/rate", null, "/e/iops"));
        // With the request-rate filter installed it is always in the chain, unlimited until its file says otherwise.
        Assert.Equal(
            ["--foreground", "--pidfile", "/e/nbdkit.pid", "--ipaddr", "127.0.0.1", "--port", "10810", "--tls=require", "--tls-psk=/e/keys.psk", "--threads=4",
             "--readonly", "--filter=rate", "--filter=/opt/solar/nbdkit-solar-iops-filter.so", "file", "file=/s/v.img", "rate=1125899906842624",
             "rate-file=/e/rate", "iops=0", "iops-file=/e/iops"],
            NbdExports.ServerArguments(record, "127.0.0.1", "/e/keys.psk", "/e/nbdkit.pid", "/e/rate", "/opt/solar/nbdkit-solar-iops-filter.so", "/e/iops"));
        // With the peers filter, first in the chain: connections from addresses its file does not list are refused before TLS.
        Assert.Equal(
            ["--foreground", "--pidfile", "/e/nbdkit.pid", "--ipaddr", "127.0.0.1", "--port", "10810", "--tls=require", "--tls-psk=/e/keys.psk", "--threads=4",
             "--readonly", "--filter=/opt/solar/nbdkit-solar-peers-filter.so", "--filter=rate", "file", "file=/s/v.img", "rate=1125899906842624",
             "rate-file=/e/rate", "peers-file=/e/peers"],
            NbdExports.ServerArguments(record, "127.0.0.1", "/e/keys.psk", "/e/nbdkit.pid", "/e/rate", null, "/e/iops", "/opt/solar/nbdkit-solar-peers-filter.so", "/e/peers"));
        Assert.Equal("0", NbdExports.IopsText(null));
        Assert.Equal("250", NbdExports.IopsText(250));
        // Bytes per second in the API, bits per second for the filter.
        Assert.Equal("838860800", NbdExports.RateText(100L << 20));
        Assert.Equal("1125899906842624", NbdExports.RateText(null));
    }

    [Fact]
    public void NbdFuseRunsATlsProxyWithTheNodesIdentity()
    {
        Assert.Equal(
            ["--pidfile", "/c/nbdfuse.pid", "/c/fuse/disk", "--socket-activation", "nbdkit", "--threads=4", "nbd", "hostname=10.0.0.5", "port=10809",
             "tls=require", "tls-psk=/c/client.psk", "tls-username=node-b"],
            NbdFuseAttacher.FuseArguments("/c", Endpoint));
        Assert.Equal("--readonly", NbdFuseAttacher.FuseArguments("/c", Endpoint with { ReadOnly = true })[0]);
    }

    [Fact]
    public void KernelPathProxiesOnAUnixSocketAndHandsItToNbdClient()
    {
        Assert.Equal(
            ["--foreground", "--pidfile", "/c/proxy.pid", "--unix", "/c/proxy.sock", "--threads=4", "nbd", "hostname=10.0.0.5", "port=10809", "tls=require",
             "tls-psk=/c/client.psk", "tls-username=node-b"],
            NbdKernelAttacher.ProxyArguments("/c", Endpoint));
        Assert.Equal(["-unix", "/c/proxy.sock", "/dev/nbd3", "-block-size", "4096", "-timeout", "30", "-readonly"],
            NbdKernelAttacher.ClientArguments("/c/proxy.sock", "/dev/nbd3", readOnly: true));
    }

    [Fact]
    public void DaemonsStartInTheirOwnSessionWithAConstantShellLine()
    {
        var args = DaemonLauncher.Arguments("/log", "nbdkit", ["--port", "1; reboot"]);
        Assert.Equal(["SOLAR_DAEMON_LOG=/log", "setsid", "--fork", "sh", "-c"], args.Take(5));
        Assert.DoesNotContain("reboot", args[5]);
        Assert.Equal(["nbdkit", "--port", "1; reboot"], args.Skip(6));
    }

    [Theory]
    [InlineData("127.0.0.1", "10809-10999", true)]
    [InlineData("::1", "20000-20000", true)]
    [InlineData("localhost", "10809-10999", false)]
    [InlineData("127.0.0.1", "10999-10809", false)]
    [InlineData("127.0.0.1", "0-10", false)]
    [InlineData("127.0.0.1", "10809", false)]
    public void ParsesServerOptions(string address, string range, bool valid)
    {
        if (valid) Assert.Equal(address, NbdServerOptions.Parse(address, range).Address);
        else Assert.Throws<FormatException>(() => NbdServerOptions.Parse(address, range));
    }

    [Fact]
    public void AStorageHostWithoutTheRequestRateFilterRefusesARequestRateLimit()
    {
        using var dir = new TempDir();
        var runner = new ProcessRunner(Microsoft.Extensions.Logging.Abstractions.NullLogger<ProcessRunner>.Instance);
        var exports = new NbdExports(dir.Path, new NbdServerOptions("127.0.0.1", 10809, 10810), new DaemonLauncher(runner),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<NbdExports>.Instance);
        exports.RequireEnforceable(null, new SolarCsi.Core.Validation.RateLimits(8L << 20, null));
        var e = Assert.Throws<Grpc.Core.RpcException>(() => exports.RequireEnforceable(null, new SolarCsi.Core.Validation.RateLimits(null, 100)));
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains(NbdServerOptions.RequestRateFilterFile, e.Status.Detail);
        var x = Assert.Throws<Grpc.Core.RpcException>(() =>
            new NbdExports(dir.Path, new NbdServerOptions("127.0.0.1", 10809, 10810), new DaemonLauncher(runner),
                Microsoft.Extensions.Logging.Abstractions.NullLogger<NbdExports>.Instance).AdmitAsync("v", "/img", "node-b", false,
                new SolarCsi.Core.Validation.RateLimits(null, 5), ["127.0.0.1"], CancellationToken.None).GetAwaiter().GetResult());
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, x.StatusCode);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void AConfiguredFilterPathMustExist()
    {
        Assert.Throws<FormatException>(() => NbdServerOptions.FindRequestRateFilter("/nonexistent/filter.so"));
        using var dir = new TempDir();
        var filter = Path.Combine(dir.Path, "f.so");
        File.WriteAllBytes(filter, []);
        Assert.Equal(filter, NbdServerOptions.FindRequestRateFilter(filter));
    }
}
