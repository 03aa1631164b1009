using System.Net;
using System.Net.Sockets;

namespace SolarCsi.Local;

/// <summary>
/// Loopback TCP ports for the local cluster's listeners (registry, agent APIs, metrics) and the tests' own servers. A
/// port the kernel picks (bind to 0) is from its ephemeral range, where any outgoing connection may take it between
/// the pick and the plugin's bind ("address already in use", seen in CI with both suites running). These come from
/// below that range (32768–60999 on Debian), where the kernel hands out nothing, apart from the NBD export ranges
/// (10809–10999 by default, 21000 and up in the suites and benches), and each is reserved across processes by a lock on
/// a file held for this process's life: the unit and sanity suites run side by side.
/// </summary>
public static class LoopbackPorts
{
    private const int First = 12000, Last = 19999;
    private static readonly string LockDir = Path.Combine(Path.GetTempPath(), "solar-csi-ports");
    private static readonly List<FileStream> Held = [];
    private static int _next = First + Random.Shared.Next(Last - First + 1);

    public static int Reserve()
    {
        lock (Held)
        {
            Directory.CreateDirectory(LockDir);
            for (var tried = 0; tried <= Last - First; tried++)
            {
                var port = _next;
                _next = _next == Last ? First : _next + 1;
                FileStream hold;
                try
                {
                    // FileShare.None is an exclusive flock on Linux: held by another live process, the open fails.
                    hold = new FileStream(Path.Combine(LockDir, $"{port}.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                }
                catch (IOException)
                {
                    continue;
                }
                if (!IsFree(port))
                {
                    hold.Dispose();
                    continue;
                }
                Held.Add(hold);
                return port;
            }
            throw new InvalidOperationException($"no loopback port left in {First}-{Last}");
        }
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
