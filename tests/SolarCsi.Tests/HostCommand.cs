using System.Diagnostics;

namespace SolarCsi.Tests;

/// <summary>A host tool run by a test's own set-up (mount, mkfs): from "/", so a removed working directory cannot stop it.</summary>
internal static class HostCommand
{
    public static void Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true, WorkingDirectory = "/" })!;
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} failed: {error}");
    }
}
