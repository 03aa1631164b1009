
namespace SolarCsi.Node.Processes;

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

    public static void Signal(int pid, int signal) => _ = SolarCsi.Core.Interop.Libc.Kill(pid, signal);

    /// <summary>
    /// Sends SIGTERM (or SIGKILL) and waits for the process to exit, SIGKILL after <paramref name="wait"/>. Signals go
    /// through a pidfd, which names one process for good: pid_max is 32768 on these hosts and a busy node starts
    /// thousands of helpers a minute, so a plain kill(pid) after a wait could hit whatever inherited the number (seen:
    /// nbdkit exports dying silently right after their start while other helpers were being stopped). With
    /// <paramref name="program"/> and <paramref name="marker"/>, the process is checked to be ours after the pidfd is
    /// open, so the check and the signal concern the same process.
    /// </summary>
    public static async Task StopAsync(int pid, bool kill, TimeSpan wait, CancellationToken ct, string? program = null, string? marker = null)
    {
        var fd = SolarCsi.Core.Interop.Libc.PidfdOpen(pid);
        if (fd < 0) return; // no such process any more
        try
        {
            if (program is not null && !IsRunning(pid, program, marker ?? program)) return;
            SolarCsi.Core.Interop.Libc.PidfdSendSignal(fd, kill ? 9 : 15);
            if (await ExitedAsync(fd, wait, ct)) return;
            SolarCsi.Core.Interop.Libc.PidfdSendSignal(fd, 9);
            await ExitedAsync(fd, TimeSpan.FromSeconds(5), ct);
        }
        finally
        {
            SolarCsi.Core.Interop.Libc.Close(fd);
        }
    }

    private static async Task<bool> ExitedAsync(int pidfd, TimeSpan wait, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + wait;
        while (!SolarCsi.Core.Interop.Libc.Readable(pidfd))
        {
            if (DateTime.UtcNow >= deadline) return false;
            await Task.Delay(20, ct);
        }
        return true;
    }
}
