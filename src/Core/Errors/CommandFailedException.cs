namespace SolarCsi.Core.Errors;

public sealed class CommandFailedException(string command, int exitCode, string stderr)
    : Exception($"{command} failed with exit code {exitCode}: {stderr.Trim()}")
{
    public string Command { get; } = command;
    public int ExitCode { get; } = exitCode;
    public string StandardError { get; } = stderr;
}
