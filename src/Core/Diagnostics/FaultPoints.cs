using System.Runtime.InteropServices;

namespace SolarCsi.Core.Diagnostics;

/// <summary>
/// Crash injection for recovery tests: when SOLAR_FAULT_POINTS names a point (comma-separated), the process
/// kills itself with SIGKILL on reaching it — no cleanup, no flush, exactly like a node losing power or the OOM
/// killer. Unset (always, outside tests) it costs one dictionary lookup.
/// </summary>
public static partial class FaultPoints
{
    public const string Variable = "SOLAR_FAULT_POINTS";

    private static readonly HashSet<string> Armed =
        (Environment.GetEnvironmentVariable(Variable) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .ToHashSet(StringComparer.Ordinal);

    public static void Hit(string point)
    {
        if (Armed.Count == 0 || !Armed.Contains(point)) return;
        Console.Error.WriteLine($"fault point {point} reached: SIGKILL");
        Console.Error.Flush();
        _ = Kill(Environment.ProcessId, 9);
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
