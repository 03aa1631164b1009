using System.Net.Sockets;

namespace SolarCsi.Node.Nbd;

/// <summary>
/// Whether an export's server accepts connections. A bare TCP connect, closed before the NBD handshake: our
/// exports admit by key, not by connection count, so this costs no client slot.
/// </summary>
public static class NbdReachability
{
    public static async Task<string?> ProblemAsync(string host, int port, TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(host, port, cts.Token);
            return null;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return $"NBD server {host}:{port} did not answer within {timeout.TotalSeconds:0} s";
        }
        catch (SocketException e)
        {
            return $"NBD server {host}:{port} is unreachable: {e.SocketErrorCode}";
        }
    }
}
