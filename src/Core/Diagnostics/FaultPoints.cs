
namespace SolarCsi.Core.Diagnostics;

/// <summary>
/// Fault injection for recovery tests. SOLAR_FAULT_POINTS is a comma-separated list: a point name makes the process
/// SIGKILL itself on reaching it (no cleanup, no flush: a node losing power, the OOM killer); "fail:NAME" makes
/// the step NAME fail as a tool would; "stop:NAME" makes the process SIGSTOP itself the first time it reaches NAME (a
/// node that hangs mid-operation: a stalled disk, a paused VM) until the test sends SIGCONT. Unset (always, outside
/// tests) it costs one set lookup.
/// </summary>
public static class FaultPoints
{
    public const string Variable = "SOLAR_FAULT_POINTS";

    private static readonly HashSet<string> Armed =
        (Environment.GetEnvironmentVariable(Variable) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .ToHashSet(StringComparer.Ordinal);

    public static void Hit(string point)
    {
        if (Armed.Count == 0) return;
        bool stop;
        lock (Armed) stop = Armed.Remove("stop:" + point);
        if (stop)
        {
            Console.Error.WriteLine($"fault point {point} reached: SIGSTOP");
            Console.Error.Flush();
            _ = Interop.Libc.Kill(Environment.ProcessId, 19);
            return;
        }
        if (!Armed.Contains(point)) return;
        Console.Error.WriteLine($"fault point {point} reached: SIGKILL");
        Console.Error.Flush();
        _ = Interop.Libc.Kill(Environment.ProcessId, 9);
    }

    /// <summary>Throws as a failing external tool would, when "fail:<paramref name="step"/>" is armed.</summary>
    public static void Fail(string step)
    {
        if (Armed.Count > 0 && Armed.Contains("fail:" + step)) throw new IOException($"injected failure of {step}");
    }
}
