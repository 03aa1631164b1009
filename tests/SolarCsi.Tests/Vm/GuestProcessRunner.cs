using SolarCsi.Core.Errors;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The driver's <see cref="IProcessRunner"/> seam pointed at the guest: the production pools and helpers build their
/// command lines as on a node, and they run in the guest's kernel. Keeps every command line it ran, with its time.
/// </summary>
public sealed class GuestProcessRunner(VmTestHost host) : IProcessRunner
{
    private static readonly int[] ZeroOnly = [0];
    private readonly List<string> _commands = [];

    public IReadOnlyList<string> Commands { get { lock (_commands) return _commands.ToArray(); } }

    public async Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken ct,
        TimeSpan? timeout = null, IReadOnlyCollection<int>? okExitCodes = null)
    {
        var line = program + " " + string.Join(' ', arguments);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = await host.RunAsync(program, arguments, timeout ?? ProcessRunner.DefaultTimeout, ct);
        lock (_commands) _commands.Add($"[{watch.Elapsed.TotalSeconds:0.00} s] {line}");
        if (!(okExitCodes ?? ZeroOnly).Contains(result.ExitCode))
            throw new CommandFailedException(line, result.ExitCode, result.StandardError);
        return new ProcessResult(result.ExitCode, result.StandardOutput, result.StandardError);
    }
}
