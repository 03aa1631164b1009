using System.Diagnostics;

namespace SolarCsi.SanityTests;

/// <summary>Tools the tests run themselves to set the scene (loop devices, volume groups) or to look at it.</summary>
internal static class HostCommand
{
    public static string Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed: {error}");
        return output.Result;
    }

    /// <summary>For clean-up: a failure is reported, not thrown, so the rest of the clean-up still runs.</summary>
    public static void Quietly(string program, params string[] args)
    {
        try { Run(program, args); }
        catch (InvalidOperationException e) { Console.Error.WriteLine(e.Message); }
    }
}
