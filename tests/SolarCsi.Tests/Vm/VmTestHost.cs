using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// One QEMU guest that runs commands for tests on the host (tests/vm/guest-agent.sh on the other end of a
/// virtio-serial port). The guest runs the host's own userland as root with every capability and the kernel
/// modules this host lacks (nbd, device-mapper, NVDIMM). Commands run one at a time. Dispose kills qemu and
/// removes the temp folder whatever state the guest is in.
/// </summary>
public sealed class VmTestHost : IAsyncDisposable
{
    private readonly Process _qemu;
    private readonly string _dir;
    private readonly string _commandDir;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly StringBuilder _qemuErrors = new();
    private Socket? _socket;
    private StreamReader? _reader;
    private StreamWriter? _writer;
    private readonly IReadOnlyList<string> _ports;
    private bool _broken;
    private int _sequence;
    private int _portsTaken;

    private VmTestHost(Process qemu, string dir, string workDir, IReadOnlyList<string> ports)
    {
        _qemu = qemu;
        _dir = dir;
        _ports = ports;
        WorkDir = workDir;
        _commandDir = Path.Combine(workDir, "cmd");
        Directory.CreateDirectory(_commandDir);
    }

    /// <summary>A host folder the guest sees read-write at the same path: inputs and results.</summary>
    public string WorkDir { get; }

    /// <summary>
    /// The host end of an extra virtio-serial port (<see cref="VmOptions.Ports"/>). Connect before the guest opens its
    /// end: a guest reading a port the host has not connected sees end-of-file.
    /// </summary>
    public string PortSocket(string port) => QemuCommandLine.PortSocket(_dir, port);

    /// <summary>
    /// A port no one has used yet. A port carries one byte stream for the guest's life: after its guest end closed,
    /// bytes still in flight would reach whoever opens it next, so each connection takes a fresh one.
    /// </summary>
    public string TakePort()
    {
        var i = Interlocked.Increment(ref _portsTaken) - 1;
        return i < _ports.Count ? _ports[i] : throw new InvalidOperationException($"all {_ports.Count} virtio-serial ports are taken (VmOptions.Ports)");
    }

    /// <summary>From starting qemu to the agent's first "ready".</summary>
    public TimeSpan BootTime { get; private set; }

    public static async Task<VmTestHost> StartAsync(VmAssets assets, VmOptions options, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("solar-vm-").FullName;
        var workDir = Path.Combine(dir, "work");
        Directory.CreateDirectory(workDir);
        // The agent runs from the share the guest mounts read-write at the same path: the test assembly may live
        // under /tmp (a clone made with mktemp), which the guest covers with a tmpfs of its own.
        var agent = Path.Combine(workDir, "guest-agent.sh");
        File.Copy(assets.Agent, agent);
        File.SetUnixFileMode(agent, File.GetUnixFileMode(assets.Agent) | UnixFileMode.UserExecute);
        assets = assets with { Agent = agent };
        var socket = Path.Combine(dir, "ctl.sock");
        if (options.DiskBytes > 0) using (var f = File.Create(Path.Combine(dir, "disk0.img"))) f.SetLength(options.DiskBytes);
        if (options.NvdimmBytes > 0) using (var f = File.Create(Path.Combine(dir, "nvdimm.img"))) f.SetLength(options.NvdimmBytes);

        // timeout(1) bounds the guest's life even if this process is killed before it can dispose.
        var start = new ProcessStartInfo("timeout") { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true };
        foreach (var a in new[] { "--kill-after=5", ((int)options.MaxLifetime.TotalSeconds).ToString(CultureInfo.InvariantCulture), assets.Qemu })
            start.ArgumentList.Add(a);
        foreach (var a in QemuCommandLine.Build(assets, options, dir, workDir, socket)) start.ArgumentList.Add(a);
        var watch = Stopwatch.StartNew();
        var qemu = Process.Start(start) ?? throw new InvalidOperationException("could not start qemu");
        var host = new VmTestHost(qemu, dir, workDir, options.Ports);
        qemu.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (host._qemuErrors) host._qemuErrors.AppendLine(e.Data); };
        qemu.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (host._qemuErrors) host._qemuErrors.AppendLine(e.Data); };
        qemu.BeginErrorReadLine();
        qemu.BeginOutputReadLine();
        try
        {
            using var boot = CancellationTokenSource.CreateLinkedTokenSource(ct);
            boot.CancelAfter(options.BootTimeout);
            await host.ConnectAsync(socket, boot.Token);
            host.BootTime = watch.Elapsed;
            return host;
        }
        catch (Exception e)
        {
            var why = host.Diagnostics();
            await host.DisposeAsync();
            throw new InvalidOperationException($"the test guest did not come up: {e.Message}\n{why}", e);
        }
    }

    private async Task ConnectAsync(string socketPath, CancellationToken ct)
    {
        // qemu creates the socket (server=on,wait=off) once it has parsed its arguments.
        while (!File.Exists(socketPath))
        {
            if (_qemu.HasExited) throw new InvalidOperationException($"qemu exited with {_qemu.ExitCode}");
            await Task.Delay(50, ct);
        }
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await _socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
        var stream = new NetworkStream(_socket, ownsSocket: false);
        _reader = new StreamReader(stream, Encoding.ASCII);
        _writer = new StreamWriter(stream, new UTF8Encoding(false)) { NewLine = "\n", AutoFlush = true };
        // The agent says "ready" once it has opened its end; qemu dropping the socket means the guest died.
        var line = await ReadLineOrExitAsync(ct);
        if (line != "ready") throw new InvalidDataException($"the guest agent said '{line}' instead of ready");
    }

    /// <summary>Runs <paramref name="program"/> with <paramref name="arguments"/> (no shell between them) in the guest.</summary>
    public Task<GuestResult> RunAsync(string program, params string[] arguments) => RunAsync(program, arguments, null);

    public Task<GuestResult> RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan? timeout, CancellationToken ct = default) =>
        ShellAsync(Shell.Join([program, .. arguments]), timeout, ct);

    /// <summary>Runs a bash script in the guest, as root, in /tmp, with DM_DISABLE_UDEV=1 and no stdin.</summary>
    public async Task<GuestResult> ShellAsync(string script, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        var limit = timeout ?? TimeSpan.FromMinutes(2);
        await _gate.WaitAsync(ct);
        try
        {
            if (_broken || _writer is null) throw new InvalidOperationException("the test guest is gone (an earlier command timed out or qemu exited)\n" + Diagnostics());
            // The script and its output travel as files on the shared folder (see tests/vm/guest-agent.sh).
            var n = ++_sequence;
            var basePath = Path.Combine(_commandDir, n.ToString(CultureInfo.InvariantCulture));
            await File.WriteAllTextAsync(basePath + ".sh", script, ct);
            var seconds = Math.Max(1, (int)Math.Ceiling(limit.TotalSeconds));
            await _writer.WriteLineAsync($"{seconds} {n}");
            // The guest kills the command at the limit (timeout -k 5); wait a little longer for its answer.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
            wait.CancelAfter(limit + TimeSpan.FromSeconds(20));
            string line;
            try
            {
                line = await ReadLineOrExitAsync(wait.Token);
            }
            catch
            {
                // An answer still to come would pair the next command with this one's exit code: the channel is unusable.
                _broken = true;
                throw;
            }
            if (!line.StartsWith("rc=", StringComparison.Ordinal) || !int.TryParse(line.AsSpan(3), CultureInfo.InvariantCulture, out var rc))
            {
                _broken = true;
                throw new InvalidDataException($"unexpected answer from the guest agent: {line}");
            }
            var result = new GuestResult(rc, await File.ReadAllTextAsync(basePath + ".out", ct), await File.ReadAllTextAsync(basePath + ".err", ct));
            foreach (var ext in new[] { ".sh", ".out", ".err" }) File.Delete(basePath + ext);
            return result;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<string> ReadLineOrExitAsync(CancellationToken ct) =>
        await _reader!.ReadLineAsync(ct) ?? throw new EndOfStreamException("the guest closed its command port (qemu exited?)");

    /// <summary>The tail of the guest's console and qemu's own messages, for failure reports.</summary>
    public string Diagnostics()
    {
        var console = Path.Combine(_dir, "console.log");
        var tail = File.Exists(console) ? string.Join('\n', File.ReadAllLines(console).TakeLast(30)) : "(no console log)";
        lock (_qemuErrors) return $"--- guest console (tail)\n{tail}\n--- qemu\n{_qemuErrors}";
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_broken && _writer is not null && !_qemu.HasExited)
            {
                // A clean power-off first; the kill below covers a guest that does not answer.
                using var quit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                try { await _writer.WriteLineAsync("quit".AsMemory(), quit.Token); } catch (Exception) { /* killed below */ }
                using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try { await _qemu.WaitForExitAsync(exit.Token); } catch (OperationCanceledException) { /* killed below */ }
            }
        }
        finally
        {
            if (!_qemu.HasExited) _qemu.Kill(entireProcessTree: true);
            await _qemu.WaitForExitAsync();
            _qemu.Dispose();
            _socket?.Dispose();
            Directory.Delete(_dir, recursive: true);
        }
    }
}
