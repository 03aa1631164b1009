using System.Net;
using System.Net.Sockets;
using SolarCsi.Node.Nbd;

namespace SolarCsi.Tests.Nbd;

/// <summary>An attachment is healthy only while its proxy's own connection to the export is established.</summary>
public sealed class ProxyConnectionTests
{
    private static readonly IReadOnlySet<string> Ours = new HashSet<string> { "4242" };

    [Theory]
    // established to port 10809 (0x2A39), our socket
    [InlineData("   0: 0100007F:9C40 0100007F:2A39 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1", true)]
    // CLOSE_WAIT: the server went away, the proxy has not closed its end
    [InlineData("   0: 0100007F:9C40 0100007F:2A39 08 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1", false)]
    // someone else's socket
    [InlineData("   0: 0100007F:9C40 0100007F:2A39 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1", false)]
    // another port
    [InlineData("   0: 0100007F:9C40 0100007F:2A3A 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1", false)]
    // IPv6 table
    [InlineData("   0: 00000000000000000000000001000000:9C40 00000000000000000000000001000000:2A39 01 00000000:00000000 00:00000000 00000000     0        0 4242 1", true)]
    public void ReadsTheKernelsConnectionTable(string line, bool connects) =>
        Assert.Equal(connects, ProxyConnection.Connects(line, Ours, 10809));

    /// <summary>This process as the "proxy": connected while the peer is up; once the peer closes and a new server
    /// listens on the same port, the old connection does not count.</summary>
    [Fact]
    public async Task AConnectionToARestartedServerIsNotTheSameConnection()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        using (var accepted = await listener.AcceptTcpClientAsync())
        {
            Assert.Null(ProxyConnection.Problem(Environment.ProcessId, "127.0.0.1", port));
        }
        listener.Stop();
        var again = new TcpListener(IPAddress.Loopback, port);
        again.Start();
        try
        {
            await Task.Delay(100);
            Assert.Contains("is gone", ProxyConnection.Problem(Environment.ProcessId, "127.0.0.1", port));
        }
        finally
        {
            again.Stop();
        }
    }
}
