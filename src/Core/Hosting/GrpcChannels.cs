using System.Net.Sockets;
using Grpc.Net.Client;

namespace SolarCsi.Core.Hosting;

/// <summary>Client channels to our own endpoints, unix sockets included.</summary>
public static class GrpcChannels
{
    /// <param name="tls">on a TCP endpoint: mutual TLS with the cluster's certificates, the server admitted only if it
    /// proves <c>Expected</c>'s identity; null connects in plaintext.</param>
    public static GrpcChannel Create(GrpcEndpoint endpoint, (Tls.ClusterTls Tls, string Expected)? tls = null)
    {
        if (!endpoint.IsUnix)
        {
            var host = endpoint.Address!.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address.ToString();
            if (tls is not { } mutual) return GrpcChannel.ForAddress($"http://{host}:{endpoint.Port}", Reconnecting(new GrpcChannelOptions()));
            return GrpcChannel.ForAddress($"https://{host}:{endpoint.Port}", Reconnecting(new GrpcChannelOptions
            {
                HttpHandler = new SocketsHttpHandler { SslOptions = mutual.Tls.ClientOptions(mutual.Expected) },
            }));
        }
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
        return GrpcChannel.ForAddress("http://localhost", Reconnecting(new GrpcChannelOptions { HttpHandler = handler }));
    }

    /// <summary>
    /// Channels are kept for a peer's life (the controller's to each agent), and a peer restarts (a plugin update, a
    /// crash): gRPC's default backoff after failed connects grows to two minutes, during which every call fails at once
    /// although the peer is back. Capped at 2 s, a restarted agent is reachable again within a heartbeat.
    /// </summary>
    private static GrpcChannelOptions Reconnecting(GrpcChannelOptions options)
    {
        options.InitialReconnectBackoff = TimeSpan.FromMilliseconds(200);
        options.MaxReconnectBackoff = TimeSpan.FromSeconds(2);
        return options;
    }
}
