using System.Diagnostics;
using System.Text;
using CliWrap;
using Microsoft.Extensions.Logging;

namespace SolarCsi.Core.Processes;

public sealed class ProcessRunner(ILogger<ProcessRunner> logger) : IProcessRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);
    private static readonly int[] ZeroOnly = [0];

    public async Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken ct,
        TimeSpan? timeout = null, IReadOnlyCollection<int>? okExitCodes = null)
    {
        HostTools.Require(program);
        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeoutCts.CancelAfter(timeout ?? DefaultTimeout);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var commandLine = program + " " + string.Join(' ', arguments);
        var watch = Stopwatch.StartNew();
        CommandResult result;
        try
        {
            result = await Cli.Wrap(program)
                .WithArguments(arguments)
                .WithValidation(CommandResultValidation.None)
                .WithStandardOutputPipe(PipeTarget.ToStringBuilder(stdout))
                .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr))
                .ExecuteAsync(timeoutCts.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            logger.LogWarning("exec {Command} timed out after {ElapsedMs} ms", commandLine, watch.ElapsedMilliseconds);
            throw new TimeoutException($"{commandLine} timed out after {(timeout ?? DefaultTimeout).TotalSeconds:0} s");
        }
        logger.LogDebug("exec {Command} exit {ExitCode} in {ElapsedMs} ms", commandLine, result.ExitCode, watch.ElapsedMilliseconds);
        if (!(okExitCodes ?? ZeroOnly).Contains(result.ExitCode))
            throw new CommandFailedException(commandLine, result.ExitCode, stderr.ToString());
        return new ProcessResult(result.ExitCode, stdout.ToString(), stderr.ToString());
    }
}
