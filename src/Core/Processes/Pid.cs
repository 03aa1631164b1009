
namespace SolarCsi.Core.Processes;

/// <summary>Pid files and liveness checks that also confirm the pid still belongs to the program we started.</summary>
public static class Pid
{
    public static int? Read(string pidFile)
    {
        try
        {
            return File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) && pid > 0 ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The process's argv, or null when it is gone (or a zombie).</summary>
    public static IReadOnlyList<string>? CommandLine(int pid)
    {
        try
        {
            var raw = File.ReadAllText($"/proc/{pid}/cmdline");
            return raw.Length == 0 ? null : raw.TrimEnd('\0').Split('\0');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Alive and still running <paramref name="program"/> with <paramref name="marker"/> among its arguments.</summary>
    public static bool IsRunning(int pid, string program, string marker) =>
        CommandLine(pid) is { Count: > 0 } argv && Path.GetFileName(argv[0]) == program && argv.Contains(marker);

    public static void Signal(int pid, int signal) => _ = Interop.Libc.Kill(pid, signal);

    /// <summary>Sends SIGTERM (or SIGKILL) and waits for the process to leave the process table.</summary>
    public static async Task StopAsync(int pid, bool kill, TimeSpan wait, CancellationToken ct)
    {
        Signal(pid, kill ? 9 : 15);
        var deadline = DateTime.UtcNow + wait;
        while (CommandLine(pid) is not null && DateTime.UtcNow < deadline) await Task.Delay(20, ct);
        if (CommandLine(pid) is not null)
        {
            Signal(pid, 9);
            while (CommandLine(pid) is not null && DateTime.UtcNow < deadline + TimeSpan.FromSeconds(5)) await Task.Delay(20, ct);
        }
    }
}
