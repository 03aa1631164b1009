using System.Net;

namespace SolarCsi.Core.Hosting;

/// <summary>A listen or dial address: <c>unix:///path/csi.sock</c> or <c>tcp://127.0.0.1:PORT</c>.</summary>
public sealed record GrpcEndpoint(string? SocketPath, IPAddress? Address, int Port)
{
    public bool IsUnix => SocketPath is not null;

    public static GrpcEndpoint Parse(string text)
    {
        if (text.StartsWith("unix://", StringComparison.Ordinal))
        {
            var path = text["unix://".Length..];
            if (!path.StartsWith('/') || path.Contains("/../") || path.EndsWith("/..", StringComparison.Ordinal))
                throw new FormatException($"endpoint '{text}' needs an absolute socket path");
            return new GrpcEndpoint(path, null, 0);
        }
        if (text.StartsWith('/')) return new GrpcEndpoint(text, null, 0);
        if (text.StartsWith("tcp://", StringComparison.Ordinal))
        {
            var rest = text["tcp://".Length..];
            var colon = rest.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(rest[(colon + 1)..], out var port) || port is < 0 or > 65535)
                throw new FormatException($"endpoint '{text}' needs host:port");
            var host = rest[..colon].Trim('[', ']');
            var address = host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(host);
            return new GrpcEndpoint(null, address, port);
        }
        throw new FormatException($"endpoint '{text}' must start with unix:// or tcp://");
    }

    public override string ToString() => IsUnix ? $"unix://{SocketPath}" :
        Address!.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"tcp://[{Address}]:{Port}" : $"tcp://{Address}:{Port}";
}
