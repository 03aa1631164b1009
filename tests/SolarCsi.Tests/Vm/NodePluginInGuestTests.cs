using System.Net.Sockets;
using Csi.V1;
using Grpc.Net.Client;
using SolarCsi.Core.Hosting;
using Xunit.Abstractions;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The NativeAOT node plugin running in the guest, reached from the host over its CSI socket: a virtio-serial port
/// whose guest end socat bridges to the plugin's unix socket (the guest has no network). The binary is not built
/// here (a NativeAOT publish takes minutes): set SOLAR_VM_NODE_BINARY to a published solar-node.
/// </summary>
[Collection(VmCollection.Name)]
public sealed class NodePluginInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    [SkippableFact]
    public async Task AnswersCsiCallsFromTheHostOverAVirtioSerialBridge()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var binary = Environment.GetEnvironmentVariable("SOLAR_VM_NODE_BINARY");
        Skip.If(binary is null || !File.Exists(binary),
            "set SOLAR_VM_NODE_BINARY to a NativeAOT solar-node (dotnet publish src/Node -c Release -r linux-x64 -o DIR)");
        // The guest mounts fresh tmpfs over these, so a binary there is invisible to it.
        Assert.False(new[] { "/tmp/", "/run/", "/mnt/" }.Any(binary!.StartsWith), $"{binary}: the guest cannot see /tmp, /run or /mnt of the host; publish elsewhere (e.g. artifacts/)");
        var g = vm.Host;
        // Host end first: the guest's socat would read end-of-file from an unconnected port and quit.
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(g.PortSocket("csi")));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            await g.RunOkAsync("mkdir -p /run/solar-state /run/kubelet /run/csi && " +
                $"setsid -f {Shell.Quote(binary)} --endpoint unix:///run/csi/csi.sock --state-dir /run/solar-state --node-id vmnode " +
                "--allowed-root /run/kubelet > /run/solar-node.log 2>&1 < /dev/null; " +
                "for i in $(seq 300); do [ -S /run/csi/csi.sock ] && exit 0; sleep 0.1; done; cat /run/solar-node.log; exit 1", TimeSpan.FromSeconds(60));
            output.WriteLine($"plugin socket up {watch.Elapsed.TotalSeconds:0.0} s after the start command");
            await g.RunOkAsync("for d in /sys/class/virtio-ports/*; do [ \"$(cat $d/name)\" = csi ] && P=/dev/${d##*/}; done; " +
                "setsid -f socat OPEN:$P UNIX-CONNECT:/run/csi/csi.sock > /run/socat.log 2>&1 < /dev/null");
            var once = socket;
            var handler = new SocketsHttpHandler
            {
                // One virtio-serial port is one byte stream: exactly one HTTP/2 connection can ride it.
                ConnectCallback = (_, _) => ValueTask.FromResult<Stream>(new NetworkStream(Interlocked.Exchange(ref once, null)
                    ?? throw new InvalidOperationException("the csi port carries one connection"), ownsSocket: true)),
            };
            using var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler });
            var info = await new Identity.IdentityClient(channel).GetPluginInfoAsync(new GetPluginInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
            Assert.Equal(PluginIdentity.DefaultDriverName, info.Name);
            Assert.True((await new Identity.IdentityClient(channel).ProbeAsync(new ProbeRequest())).Ready ?? false);
            var node = await new Csi.V1.Node.NodeClient(channel).NodeGetInfoAsync(new NodeGetInfoRequest());
            Assert.Equal("vmnode", node.NodeId);
            output.WriteLine($"GetPluginInfo {info.Name} {info.VendorVersion}, NodeGetInfo {node.NodeId} max {node.MaxVolumesPerNode}; {watch.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
            output.WriteLine(await g.RunOkAsync("tail -20 /run/solar-node.log; cat /run/socat.log; true"));
            await g.ShellAsync("pkill -x socat; pkill -f /solar-node; rm -rf /run/solar-state /run/csi");
        }
    }
}
