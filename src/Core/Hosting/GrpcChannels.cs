using System.Net.Sockets;
using Grpc.Net.Client;

namespace SolarCsi.Core.Hosting;

/// <summary>Client channels to our own endpoints, unix sockets included.</summary>
public static class GrpcChannels
{
    public static GrpcChannel Create(GrpcEndpoint endpoint)
    {
        if (!endpoint.IsUnix)
            return GrpcChannel.ForAddress($"http://{(endpoint.Address!.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address)}:{endpoint.Port}");
        var path = endpoint.SocketPath!;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler });
    }
}
