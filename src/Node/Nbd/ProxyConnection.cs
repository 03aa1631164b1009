using System.Globalization;

namespace SolarCsi.Node.Nbd;

/// <summary>
/// Whether an attachment's local proxy (nbdkit's nbd plugin, in front of nbdfuse or nbd-client) still holds an
/// established TCP connection to its export. The proxy does not reconnect: once its connection is gone — the server
/// was killed, or restarted — every read and write of the attachment fails, even while a new server accepts
/// connections on the same port. So a probe of the port alone would call a dead attachment healthy.
/// </summary>
public static class ProxyConnection
{
    private const string Established = "01";

    /// <summary>
    /// The proxy serving the attachment whose key file is <paramref name="pskFile"/>: a child of
    /// <paramref name="parentPid"/> (nbdfuse runs it by socket activation) whose command line names that file. Read from
    /// the parent's children list, not by walking /proc: the check runs for every attached volume at every stats call
    /// and reconcile pass, and a node with hundreds of attachments has thousands of processes.
    /// </summary>
    public static int? FindChildProxy(int parentPid, string pskFile)
    {
        string children;
        try { children = File.ReadAllText($"/proc/{parentPid}/task/{parentPid}/children"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        foreach (var word in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            if (int.TryParse(word, out var pid) && Processes.Pid.IsRunning(pid, "nbdkit", "tls-psk=" + pskFile))
                return pid;
        return null;
    }

    /// <summary>Null when <paramref name="pid"/> has an established connection to <paramref name="port"/>, else what is wrong.</summary>
    public static string? Problem(int pid, string host, int port)
    {
        var sockets = SocketInodes(pid);
        foreach (var table in new[] { "tcp", "tcp6" })
        {
            string[] lines;
            try { lines = File.ReadAllLines($"/proc/{pid}/net/{table}"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            if (lines.Skip(1).Any(line => Connects(line, sockets, port))) return null;
        }
        return $"the attachment's connection to the NBD server {host}:{port} is gone (the server stopped or restarted); stage the volume again";
    }

    /// <summary>A /proc/net/tcp line: sl local rem st queues timer retrnsmt uid timeout inode …</summary>
    public static bool Connects(string line, IReadOnlySet<string> sockets, int port)
    {
        var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length < 10 || f[3] != Established || !sockets.Contains(f[9])) return false;
        var remote = f[2];
        var colon = remote.LastIndexOf(':');
        return colon > 0 && int.TryParse(remote[(colon + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var remotePort) && remotePort == port;
    }

    private static HashSet<string> SocketInodes(int pid)
    {
        var inodes = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (var fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
            {
                var target = new FileInfo(fd).LinkTarget;
                if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal)) inodes.Add(target[8..^1]);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return inodes;
    }
}
