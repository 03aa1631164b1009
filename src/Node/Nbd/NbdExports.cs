using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using SolarCsi.Core.Storage;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Nbd;

/// <summary>
/// One nbdkit per exported volume, TLS-PSK only. Admitting a node adds its identity to the export's PSK file
/// (GnuTLS re-reads it at every handshake, so no restart); revoking a writer removes the identity and restarts
/// the server, which drops every connection the old holder had — the fence a moved StatefulSet pod needs.
/// Exports run in their own session and survive a plugin restart; the registry (one JSON per export, written
/// atomically) lets the next plugin adopt them.
/// </summary>
public sealed class NbdExports(string root, NbdServerOptions server, DaemonLauncher launcher, ILogger<NbdExports> logger)
{
    // One volume's admits, revocations and removals take turns; different volumes' do not wait for each other (a
    // single gate made 16 publishes in flight queue behind each other's nbdkit start: bench-nbd-scale). Ports are the
    // one thing volumes share: a port is reserved in memory from its choice until its record is written.
    private readonly SolarCsi.Core.Concurrency.KeyedLock _volumes = new();
    private readonly HashSet<int> _reservedPorts = [];

    private string DirOf(string volumeId) => Path.Combine(root, volumeId);
    private string RecordOf(string volumeId) => Path.Combine(DirOf(volumeId), "export.json");
    private string PskOf(string volumeId) => Path.Combine(DirOf(volumeId), "keys.psk");
    private string PidOf(string volumeId) => Path.Combine(DirOf(volumeId), "nbdkit.pid");
    private string RateOf(string volumeId) => Path.Combine(DirOf(volumeId), "rate");
    private string PeersOf(string volumeId) => Path.Combine(DirOf(volumeId), "peers");

    private string IopsOf(string volumeId) => Path.Combine(DirOf(volumeId), "iops");

    /// <summary>nbdkit's rate filter takes bits per second; "no limit" is a rate no network reaches.</summary>
    public const long UnlimitedBits = 1L << 50;

    public static string RateText(long? bytesPerSecond) =>
        (bytesPerSecond is { } b ? b * 8 : UnlimitedBits).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Our request-rate filter's file: requests per second, 0 = unlimited.</summary>
    public static string IopsText(long? requestsPerSecond) =>
        (requestsPerSecond ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Refuses limits this storage host cannot enforce: a request rate without the filter installed, or on a
    /// running export of <paramref name="volumeId"/> that was started without it.
    /// </summary>
    public void RequireEnforceable(string? volumeId, RateLimits limits)
    {
        if (limits.RequestsPerSecond is null) return;
        if (server.RequestRateFilter is null)
            throw Core.Errors.CsiErrors.InvalidArgument($"mutable parameter '{MutableParameters.IopsLimitKey}' cannot be enforced on this storage host: " +
                $"{NbdServerOptions.RequestRateFilterFile} is not installed (see docs/deploy.md)");
        if (volumeId is not null && IsRunning(volumeId) && !RunsRequestRateFilter(volumeId))
            throw Core.Errors.CsiErrors.FailedPrecondition($"the export of {volumeId} was started before the request-rate filter was installed; " +
                "unpublish and publish the volume again to enforce an iopsLimit");
    }

    /// <summary>
    /// Sets the export's limits while it serves: both filters re-read their file (about once a second), so no
    /// client is disconnected. Written atomically, as the rate filter's manual asks. Callers check the limits with
    /// <see cref="RequireEnforceable"/> before they change anything.
    /// </summary>
    public async Task SetLimitsAsync(string volumeId, RateLimits limits, CancellationToken ct)
    {
        await AtomicFile.WriteAsync(RateOf(volumeId), Encoding.ASCII.GetBytes(RateText(limits.BytesPerSecond) + "\n"), ct);
        await AtomicFile.WriteAsync(IopsOf(volumeId), Encoding.ASCII.GetBytes(IopsText(limits.RequestsPerSecond) + "\n"), ct);
    }

    private bool RunsRequestRateFilter(string volumeId) =>
        Pid.Read(PidOf(volumeId)) is { } pid && Pid.CommandLine(pid) is { } argv && argv.Contains("--filter=" + server.RequestRateFilter, StringComparer.Ordinal);

    public NbdExportRecord? Get(string volumeId) =>
        StateFiles.Read(RecordOf(volumeId), b => JsonSerializer.Deserialize(b, NbdJson.Default.NbdExportRecord),
            r => r.VolumeId == volumeId && r.Image is { Length: > 0 } && r.Identities is not null);

    public IReadOnlyList<NbdExportRecord> All() =>
        Directory.Exists(root)
            ? Directory.EnumerateDirectories(root).Select(d => Get(Path.GetFileName(d))).OfType<NbdExportRecord>().ToArray()
            : [];

    public bool IsRunning(string volumeId) => Pid.Read(PidOf(volumeId)) is { } pid && Pid.IsRunning(pid, "nbdkit", PidOf(volumeId));

    /// <summary>The key <paramref name="nodeId"/> is admitted with, for a consumer that is this storage host itself.</summary>
    public string? KeyOf(string volumeId, string nodeId) => ReadKeys(volumeId).GetValueOrDefault(nodeId);

    /// <summary>Lets <paramref name="nodeId"/> connect, from <paramref name="addresses"/> only; returns what its NodeStage needs.</summary>
    public async Task<NbdConnection> AdmitAsync(string volumeId, string image, string nodeId, bool readOnly, RateLimits limits,
        IReadOnlyList<string> addresses, CancellationToken ct)
    {
        RequireEnforceable(volumeId, limits);
        using (await _volumes.AcquireAsync(volumeId, ct))
        {
            var record = Get(volumeId);
            if (record is null && StateFiles.IsUnreadable(RecordOf(volumeId)))
                throw Core.Errors.CsiErrors.FailedPrecondition($"the export record of {volumeId} is unreadable and was set aside; " +
                    "repair it or remove the export (see `solar node-state`) before the volume is published again");
            if (record is not null && record.ReadOnly != readOnly)
            {
                if (record.Identities.Count > 0)
                    throw Core.Errors.CsiErrors.FailedPrecondition($"volume {volumeId} is exported {(record.ReadOnly ? "read-only" : "read-write")} to {string.Join(", ", record.Identities)}");
                await StopProcessAsync(volumeId, ct);
                record = record with { ReadOnly = readOnly };
            }
            int? reservedPort = null;
            if (record is null)
            {
                reservedPort = AllocatePort();
                record = new NbdExportRecord(volumeId, image, reservedPort.Value, readOnly, []);
            }
            var keys = ReadKeys(volumeId);
            if (!keys.TryGetValue(nodeId, out var key))
            {
                key = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
                keys[nodeId] = key;
            }
            var peers = new Dictionary<string, List<string>>(record.Peers ?? new Dictionary<string, List<string>>(), StringComparer.Ordinal) { [nodeId] = [.. addresses.Order(StringComparer.Ordinal)] };
            record = record with { Identities = keys.Keys.Order(StringComparer.Ordinal).ToList(), Peers = PeersOfAdmitted(peers, keys) };
            try
            {
                // The address comes before the key: a key is never usable from an address the export has not been told of.
                await WritePeersAsync(record, ct);
                await WriteKeysAsync(volumeId, keys, ct);
                await SaveAsync(record, ct);
            }
            finally
            {
                // Written (the record now holds the port) or not (free again).
                if (reservedPort is { } port) lock (_reservedPorts) _reservedPorts.Remove(port);
            }
            await SetLimitsAsync(volumeId, limits, ct);
            await EnsureRunningAsync(record, ct);
            return new NbdConnection(server.Address, record.Port, nodeId, key, readOnly);
        }
    }

    /// <summary>
    /// Stops admitting <paramref name="nodeId"/>; a writer's live connections are cut. The fence comes first: the server
    /// is killed before anything is written, so a full disk cannot leave the old writer connected. The revocation is
    /// then written (atomically, or in place when the disk has no room for a new file: the key file only shrinks), and
    /// only then does the export serve the remaining nodes again. If it cannot be written at all, the export stays
    /// stopped and the call fails, so it is retried: nothing is confirmed that is not on disk.
    /// </summary>
    public async Task RevokeAsync(string volumeId, string nodeId, CancellationToken ct)
    {
        using (await _volumes.AcquireAsync(volumeId, ct))
        {
            if (Get(volumeId) is not { } record)
            {
                await FenceWithoutRecordAsync(volumeId, nodeId, ct);
                return;
            }
            var keys = ReadKeys(volumeId);
            var removed = keys.Remove(nodeId);
            var remaining = record with
            {
                Identities = keys.Keys.Order(StringComparer.Ordinal).ToList(), Peers = record.Peers is null ? null : PeersOfAdmitted(record.Peers, keys),
            };
            var restart = removed && !record.ReadOnly;
            if (keys.Count == 0 || restart) await StopProcessAsync(volumeId, ct);
            await PersistRevocationAsync(volumeId, keys, remaining, ct);
            if (keys.Count == 0) logger.LogInformation("export of {VolumeId} stopped: no node is admitted", volumeId);
            else if (restart) await EnsureRunningAsync(remaining, ct); // a reader's removal needs no restart: readers cannot write
        }
    }

    /// <summary>
    /// The export's record is unreadable (set aside) but its server may still run with the node's key: the fence
    /// must not fail open. The server is stopped and the key removed; the export comes back only once an operator has
    /// repaired the record (admits are refused until then).
    /// </summary>
    private async Task FenceWithoutRecordAsync(string volumeId, string nodeId, CancellationToken ct)
    {
        if (!StateFiles.IsUnreadable(RecordOf(volumeId)) && !File.Exists(PskOf(volumeId))) return;
        await StopProcessAsync(volumeId, ct);
        if (File.Exists(PskOf(volumeId)))
        {
            var keys = ReadKeys(volumeId);
            if (keys.Remove(nodeId)) await RewriteInPlaceAsync(PskOf(volumeId), KeysText(keys), ct);
        }
        logger.LogWarning("export of {VolumeId} has an unreadable record: its server is stopped and {Node}'s key removed", volumeId, nodeId);
    }

    private async Task PersistRevocationAsync(string volumeId, Dictionary<string, string> keys, NbdExportRecord remaining, CancellationToken ct)
    {
        try
        {
            await WriteKeysAsync(volumeId, keys, ct);
            await WritePeersAsync(remaining, ct);
            await SaveAsync(remaining, ct);
        }
        catch (IOException e)
        {
            logger.LogWarning("revoking on {VolumeId}: {Reason}; rewriting the key file and record in place", volumeId, e.Message);
            try
            {
                // The key file is the fence: it goes first, and it only shrinks, so the blocks it frees are enough.
                await RewriteInPlaceAsync(PskOf(volumeId), KeysText(keys), ct);
                await RewriteInPlaceAsync(RecordOf(volumeId), JsonSerializer.SerializeToUtf8Bytes(remaining, NbdJson.Default.NbdExportRecord), ct);
            }
            catch (IOException again)
            {
                throw Core.Errors.CsiErrors.Unavailable($"the revocation on {volumeId} could not be written ({again.Message}); its export stays stopped " +
                    "until it can: free space on the storage host and retry");
            }
        }
    }

    /// <summary>Overwrites the file's own blocks, then cuts it to length: shorter content needs no new block on ext4,
    /// xfs or tmpfs, so a full disk cannot fail it half-way (truncating first could hand the freed blocks to a writer).</summary>
    private static async Task RewriteInPlaceAsync(string path, byte[] content, CancellationToken ct)
    {
        await using var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write);
        await stream.WriteAsync(content, ct);
        stream.SetLength(content.Length);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Removes the export entirely (the volume is being deleted).</summary>
    public async Task RemoveAsync(string volumeId, CancellationToken ct)
    {
        using (await _volumes.AcquireAsync(volumeId, ct))
        {
            await StopProcessAsync(volumeId, ct);
            if (Directory.Exists(DirOf(volumeId))) Directory.Delete(DirOf(volumeId), recursive: true);
        }
    }

    /// <summary>Start-up: restart exports that should be serving, stop the ones nobody is admitted to.</summary>
    public async Task ReconcileAsync(CancellationToken ct)
    {
        foreach (var record in All())
        {
            try
            {
                if (record.Identities.Count == 0) await StopProcessAsync(record.VolumeId, ct);
                else await EnsureRunningAsync(record, ct);
            }
            catch (Exception e)
            {
                logger.LogError(e, "could not restore the export of {VolumeId}", record.VolumeId);
            }
        }
    }

    /// <summary>
    /// Periodic: starts again the exports that should serve but do not — their server died, or the node's data-plane
    /// pod was restarted and took every helper with it. Each record is read again in its volume's turn, so a publish or
    /// unpublish in between is not undone.
    /// </summary>
    public async Task RestoreStoppedAsync(CancellationToken ct)
    {
        foreach (var volumeId in All().Where(r => r.Identities.Count > 0 && !IsRunning(r.VolumeId)).Select(r => r.VolumeId))
        {
            using var turn = await _volumes.AcquireAsync(volumeId, ct);
            try
            {
                if (Get(volumeId) is not { Identities.Count: > 0 } record || IsRunning(volumeId)) continue;
                logger.LogWarning("the export of {VolumeId} is not running although {Nodes} are admitted; starting it again", volumeId,
                    string.Join(", ", record.Identities));
                await EnsureRunningAsync(record, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "could not restore the export of {VolumeId}", volumeId);
            }
        }
    }

    /// <summary>A server that dies at start (seen here: about one start in 500, silently, right after its pid file)
    /// is started again; a port someone else took is not retried (the probe would only meet the stranger).</summary>
    private static readonly ResiliencePipeline StartRetry = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<ExportStartException>(e => e.Retryable),
            MaxRetryAttempts = 2,
            Delay = TimeSpan.FromMilliseconds(50),
        })
        .Build();

    private async Task EnsureRunningAsync(NbdExportRecord record, CancellationToken ct)
    {
        if (IsRunning(record.VolumeId)) return;
        try
        {
            await StartRetry.ExecuteAsync(async token => await StartServingAsync(record, token), ct);
        }
        catch (ExportStartException e)
        {
            throw e.PortTaken
                ? Core.Errors.CsiErrors.ResourceExhausted($"the export of {record.VolumeId} cannot listen: {e.Message}")
                : Core.Errors.CsiErrors.Unavailable($"the export of {record.VolumeId} did not start serving: {e.Message}");
        }
    }

    private async Task StartServingAsync(NbdExportRecord record, CancellationToken ct)
    {
        var logFile = Path.Combine(DirOf(record.VolumeId), "nbdkit.log");
        var args = ServerArguments(record, server.Address, PskOf(record.VolumeId), PidOf(record.VolumeId), RateOf(record.VolumeId),
            server.RequestRateFilter, IopsOf(record.VolumeId), record.Peers is null ? null : server.PeersFilter, PeersOf(record.VolumeId));
        int pid;
        try
        {
            pid = await launcher.StartAsync("nbdkit", args, PidOf(record.VolumeId), logFile, TimeSpan.FromSeconds(10), ct);
        }
        catch (Grpc.Core.RpcException e) when (e.StatusCode != Grpc.Core.StatusCode.FailedPrecondition) // a missing nbdkit says so as it is
        {
            throw new ExportStartException(e.Status.Detail, e.Status.Detail.Contains("Address already in use", StringComparison.Ordinal), Retryable: false);
        }
        // The pid file says nbdkit bound its port; only an accepted connection from a live server says it serves it.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        string? problem;
        while ((problem = await NbdReachability.ProblemAsync(server.Address, record.Port, TimeSpan.FromSeconds(2), ct)) is not null)
        {
            if (Pid.CommandLine(pid) is null || DateTime.UtcNow >= deadline) break;
            await Task.Delay(20, ct);
        }
        if (problem is null && Pid.CommandLine(pid) is not null)
        {
            logger.LogInformation("exporting {VolumeId} on {Address}:{Port} ({Mode}) as pid {Pid}", record.VolumeId, server.Address, record.Port,
                record.ReadOnly ? "read-only" : "read-write", pid);
            return;
        }
        var alive = Pid.CommandLine(pid) is not null;
        await Pid.StopAsync(pid, kill: true, TimeSpan.FromSeconds(5), ct, "nbdkit", PidOf(record.VolumeId));
        var tail = File.Exists(logFile) ? string.Join(" | ", File.ReadLines(logFile).TakeLast(3)) : "";
        logger.LogWarning("nbdkit for {VolumeId} (pid {Pid}) {What}: {Problem}; its log: {Tail}", record.VolumeId, pid,
            alive ? "does not accept connections" : "exited after start", problem ?? "it exited", tail);
        throw new ExportStartException(alive ? problem ?? "not serving" : $"nbdkit exited right after it started ({tail})", PortTaken: false, Retryable: !alive);
    }

    /// <summary>Only a server that died right after its start is started again (the flake seen here); a timeout is not
    /// retried, so a stuck start holds the export gate for one attempt, not three.</summary>
    private sealed class ExportStartException(string message, bool PortTaken, bool Retryable) : Exception(message)
    {
        public bool PortTaken { get; } = PortTaken;
        public bool Retryable { get; } = Retryable;
    }

    /// <param name="peersFilter">our admitted-peers filter (native/nbdkit-peers-filter), where installed: a connection from an
    /// address <paramref name="peersFile"/> does not list is refused before its TLS handshake.</param>
    public static IReadOnlyList<string> ServerArguments(NbdExportRecord record, string address, string pskFile, string pidFile, string rateFile,
        string? requestRateFilter, string iopsFile, string? peersFilter = null, string? peersFile = null)
    {
        var args = new List<string>
        {
            "--foreground", "--pidfile", pidFile, "--ipaddr", address, "--port", record.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--tls=require", "--tls-psk=" + pskFile, NbdServerOptions.ThreadsArgument,
        };
        if (record.ReadOnly) args.Add("--readonly");
        // The rate filter is always there, so a limit can be set or lifted later without restarting the export
        // (which would cut the attached node). rate= is only its fallback: the file, written before the start,
        // holds the current limit.
        // The request-rate filter, where installed, likewise: iops=0 (unlimited) until its file says otherwise.
        if (peersFilter is not null) args.Add("--filter=" + peersFilter);
        args.Add("--filter=rate");
        if (requestRateFilter is not null) args.Add("--filter=" + requestRateFilter);
        args.AddRange(["file", "file=" + record.Image, "rate=" + UnlimitedBits.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "rate-file=" + rateFile]);
        if (requestRateFilter is not null) args.AddRange(["iops=0", "iops-file=" + iopsFile]);
        if (peersFilter is not null) args.Add("peers-file=" + (peersFile ?? throw new ArgumentNullException(nameof(peersFile))));
        return args;
    }

    private async Task StopProcessAsync(string volumeId, CancellationToken ct)
    {
        // SIGKILL: on SIGTERM nbdkit keeps serving until its clients leave, which is exactly what a fence must not do.
        if (Pid.Read(PidOf(volumeId)) is { } pid && Pid.IsRunning(pid, "nbdkit", PidOf(volumeId)))
        {
            await Pid.StopAsync(pid, kill: true, TimeSpan.FromSeconds(5), ct, "nbdkit", PidOf(volumeId));
            // A dying process drops its memory (and its cmdline) before its sockets; wait for the port itself.
            if (Get(volumeId) is { } record) await WaitForPortReleaseAsync(record.Port, ct);
        }
        if (File.Exists(PidOf(volumeId))) File.Delete(PidOf(volumeId));
    }

    private async Task WaitForPortReleaseAsync(int port, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var probe = new TcpListener(IPAddress.Parse(server.Address), port);
                probe.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                probe.Start();
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(20, ct);
            }
        }
        logger.LogWarning("port {Port} is still bound 5 s after its nbdkit was killed", port);
    }

    /// <summary>
    /// A port no record holds, no other admit has reserved and nobody listens on; reserved until the caller writes its
    /// record. The records are read under the same lock that releases reservations: a caller releases only after its
    /// record is written, so every port is either still reserved or already on disk when the next one looks (read
    /// before that lock, two publishes in flight took the same port: bench-nbd-scale, "Address already in use").
    /// </summary>
    private int AllocatePort()
    {
        lock (_reservedPorts)
        {
            var taken = All().Select(r => r.Port).ToHashSet();
            for (var port = server.FirstPort; port <= server.LastPort; port++)
            {
                if (taken.Contains(port) || _reservedPorts.Contains(port)) continue;
                try
                {
                    using var probe = new TcpListener(IPAddress.Parse(server.Address), port);
                    probe.Start();
                }
                catch (SocketException)
                {
                    continue;
                }
                _reservedPorts.Add(port);
                return port;
            }
        }
        throw Core.Errors.CsiErrors.ResourceExhausted($"no free NBD port in {server.FirstPort}-{server.LastPort}");
    }

    private Dictionary<string, string> ReadKeys(string volumeId) =>
        File.Exists(PskOf(volumeId))
            ? File.ReadAllLines(PskOf(volumeId)).Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
                .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal)
            : new Dictionary<string, string>(StringComparer.Ordinal);

    private static byte[] KeysText(Dictionary<string, string> keys) => Encoding.ASCII.GetBytes(string.Concat(keys.Select(k => $"{k.Key}:{k.Value}\n")));

    private Task WriteKeysAsync(string volumeId, Dictionary<string, string> keys, CancellationToken ct) =>
        AtomicFile.WriteAsync(PskOf(volumeId), KeysText(keys), ct);

    /// <summary>The addresses of the nodes that still hold a key.</summary>
    private static Dictionary<string, List<string>> PeersOfAdmitted(IReadOnlyDictionary<string, List<string>> peers, Dictionary<string, string> keys) =>
        peers.Where(p => keys.ContainsKey(p.Key)).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);

    /// <summary>The filter's peers file: every address of every admitted node, one per line (re-read at each connection).</summary>
    private Task WritePeersAsync(NbdExportRecord record, CancellationToken ct) =>
        record.Peers is null ? Task.CompletedTask
            : AtomicFile.WriteAsync(PeersOf(record.VolumeId),
                Encoding.ASCII.GetBytes(string.Concat(record.Peers.Values.SelectMany(a => a).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
                    .Select(a => a + "\n"))), ct);

    private Task SaveAsync(NbdExportRecord record, CancellationToken ct) =>
        AtomicFile.WriteAsync(RecordOf(record.VolumeId), JsonSerializer.SerializeToUtf8Bytes(record, NbdJson.Default.NbdExportRecord), ct);
}
