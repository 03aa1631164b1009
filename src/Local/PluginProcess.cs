using System.Diagnostics;

namespace SolarCsi.Local;

/// <summary>A plugin running as a child process, its output captured to a log file.</summary>
public sealed class PluginProcess
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly string _logFile;

    private PluginProcess(string name, Process process, StreamWriter log, string logFile)
    {
        Name = name;
        _process = process;
        _log = log;
        _logFile = logFile;
    }

    public string Name { get; }
    /// <summary>The process id (for /proc/PID: memory figures in the benches).</summary>
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public static PluginProcess Start(string name, string program, IReadOnlyList<string> args, string logFile,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        var log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new PluginProcess(name, process, log, logFile);
    }

    /// <summary>Waits for the process to end and for its output to reach the log (the output is read asynchronously).</summary>
    public Task WaitForExitAsync(CancellationToken ct) => _process.WaitForExitAsync(ct);

    public string Tail(int lines = 30)
    {
        lock (_log) _log.Flush();
        using var reader = new StreamReader(new FileStream(_logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        return string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(lines));
    }

    /// <summary>SIGTERM and a grace period, then SIGKILL; or SIGKILL at once, as a crash.</summary>
    public async Task StopAsync(bool graceful = true)
    {
        if (!_process.HasExited)
        {
            SolarCsi.Node.Processes.Pid.Signal(_process.Id, graceful ? 15 : 9);
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try { await _process.WaitForExitAsync(grace.Token); }
            catch (OperationCanceledException) { _process.Kill(entireProcessTree: true); await _process.WaitForExitAsync(); }
        }
        else
        {
            await _process.WaitForExitAsync();
        }
        lock (_log) _log.Dispose();
        _process.Dispose();
    }
}
