using System.Diagnostics;

namespace SolarCsi.SanityTests;

/// <summary>Tools the tests run themselves to set the scene (loop devices, volume groups) or to look at it.</summary>
internal static class HostCommand
{
    public static string Run(string program, params string[] args)
    {
        // From "/": a test process whose working directory was removed (its checkout deleted under it) could start
        // nothing, and a clean-up that cannot start vgremove leaks the volume group and its loop device.
        using var p = Process.Start(new ProcessStartInfo(program, args)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/",
        })!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed: {error}");
        return output.Result;
    }

    /// <summary>
    /// For clean-up: any failure (the tool failing, or not starting at all) is reported, not thrown, so the rest of
    /// the clean-up still runs.
    /// </summary>
    public static void Quietly(string program, params string[] args)
    {
        try { Run(program, args); }
        catch (Exception e) { Console.Error.WriteLine($"{program} {string.Join(' ', args)}: {e.Message}"); }
    }

    /// <summary>A process's state letter from /proc (R, S, D, T when stopped by SIGSTOP, …).</summary>
    public static char ProcessState(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }
}
