using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Csi.V1;
using Grpc.Core;
using Grpc.Net.Client;
using SolarCsi.Core.Hosting;

namespace SolarCsi.Cli;

/// <summary>The memory and start-up figures of one plugin process, read from the kernel and from its Probe.</summary>
internal static class PluginFootprint
{
    /// <summary>Resident memory in MiB: all of it (VmRSS), the part backed by files (the binary's pages) and the anonymous part.</summary>
    public sealed record Resident(double Total, double File, double Anonymous);

    /// <summary>Reads VmRSS, RssFile and RssAnon from /proc/PID/status.</summary>
    public static Resident Rss(int pid)
    {
        var kb = File.ReadLines($"/proc/{pid}/status")
            .Select(l => l.Split(':', 2))
            .Where(p => p.Length == 2 && p[0] is "VmRSS" or "RssFile" or "RssAnon")
            .ToDictionary(p => p[0], p => double.Parse(p[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture));
        return new Resident(kb["VmRSS"] / 1024, kb["RssFile"] / 1024, kb["RssAnon"] / 1024);
    }

    /// <summary>
    /// Waits until the socket accepts a connection (polled every millisecond; a gRPC channel would back off between
    /// failed connects and blur the figure), then returns a channel on it.
    /// </summary>
    public static async Task<GrpcChannel> WaitServingAsync(string socketPath, TimeSpan timeout, Func<bool> exited)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (exited()) throw new InvalidOperationException($"the plugin serving {socketPath} exited during start-up");
            if (File.Exists(socketPath))
            {
                using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
                    return GrpcChannels.Create(GrpcEndpoint.Parse("unix://" + socketPath));
                }
                catch (SocketException)
                {
                }
            }
            if (deadline.Elapsed > timeout) throw new TimeoutException($"nothing listens on {socketPath} after {timeout.TotalSeconds:0} s");
            await Task.Delay(1);
        }
    }

    /// <summary>Probes every millisecond until the plugin answers; with <paramref name="ready"/>, until it says ready.</summary>
    public static async Task WaitProbeAsync(Identity.IdentityClient identity, bool ready, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var probe = await identity.ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                if (!ready || (probe.Ready ?? true)) return;
            }
            catch (RpcException) when (deadline.Elapsed < timeout)
            {
            }
            if (deadline.Elapsed > timeout) throw new TimeoutException($"no {(ready ? "ready " : "")}Probe answer after {timeout.TotalSeconds:0} s");
            await Task.Delay(1);
        }
    }

    /// <summary>
    /// <paramref name="calls"/> calls from <paramref name="concurrency"/> callers, cycling through <paramref name="mix"/>;
    /// an error status is an answer too (the mix includes calls that must fail). Returns calls per second.
    /// </summary>
    public static async Task<double> HammerAsync(int calls, int concurrency, IReadOnlyList<Func<Task>> mix)
    {
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < calls)
            {
                try { await mix[i % mix.Count](); }
                catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.Unavailable) { }
            }
        }));
        return calls / clock.Elapsed.TotalSeconds;
    }
}
