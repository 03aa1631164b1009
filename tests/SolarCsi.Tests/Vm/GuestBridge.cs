using System.Net.Sockets;
using Csi.V1;
using Grpc.Net.Client;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// A gRPC channel from the host to a unix socket in the guest (which has no network): a virtio-serial port whose guest
/// end socat bridges to the socket. A port is one byte stream for the guest's life — after its guest end closed, bytes
/// in flight would reach whoever opens it next — so every channel takes a fresh one.
/// </summary>
internal static class GuestBridge
{
    public static async Task<GrpcChannel> OpenAsync(VmTestHost g, string guestSocket)
    {
        var port = g.TakePort();
        // Host end first: the guest's socat would read end-of-file from an unconnected port and quit.
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(g.PortSocket(port)));
        await g.RunOkAsync($"for d in /sys/class/virtio-ports/*; do [ \"$(cat $d/name)\" = {port} ] && P=/dev/${{d##*/}}; done; " +
            $"setsid -f socat OPEN:$P UNIX-CONNECT:{guestSocket} >> /run/socat.log 2>&1 < /dev/null");
        var once = socket;
        var handler = new SocketsHttpHandler
        {
            // One virtio-serial port is one byte stream: exactly one HTTP/2 connection can ride it.
            ConnectCallback = (_, _) => ValueTask.FromResult<Stream>(new NetworkStream(Interlocked.Exchange(ref once, null)
                ?? throw new InvalidOperationException($"port {port} carries one connection"), ownsSocket: true)),
        };
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler });
    }
}

/// <summary>What a test drives a volume through on one node of the guest: the controller's and that node's CSI services.</summary>
public interface IGuestCsi
{
    Csi.V1.Controller.ControllerClient Controller { get; }
    Csi.V1.Node.NodeClient Node { get; }
    string NodeId { get; }
}
