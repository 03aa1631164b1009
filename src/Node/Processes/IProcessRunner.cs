namespace SolarCsi.Node.Processes;

/// <summary>
/// Runs an external tool with an argument array (never a shell string). An interface because the OS layer is
/// tested two ways: for real as root, and by recording command lines.
/// </summary>
public interface IProcessRunner
{
    /// <summary>Throws <see cref="CommandFailedException"/> on an exit code not in <paramref name="okExitCodes"/>.</summary>
    Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken ct,
        TimeSpan? timeout = null, IReadOnlyCollection<int>? okExitCodes = null);
}
