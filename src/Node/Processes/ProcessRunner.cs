using System.Diagnostics;
using System.Text;
using CliWrap;
using Microsoft.Extensions.Logging;
using SolarCsi.Core.Errors;

namespace SolarCsi.Node.Processes;

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
        catch (Exception e) when (OutOfProcesses(e) is { } why)
        {
            logger.LogWarning("exec {Command} could not start: {Why}", commandLine, why);
            throw SolarCsi.Core.Errors.CsiErrors.ResourceExhausted($"{program} cannot be started on this node: {why}");
        }
        logger.LogDebug("exec {Command} exit {ExitCode} in {ElapsedMs} ms", commandLine, result.ExitCode, watch.ElapsedMilliseconds);
        if (!(okExitCodes ?? ZeroOnly).Contains(result.ExitCode))
            throw new CommandFailedException(commandLine, result.ExitCode, stderr.ToString());
        return new ProcessResult(result.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>
    /// A start that failed because the node has no room for another process — fork's EAGAIN (the process or thread
    /// limit: pids.max of the pod's cgroup, kernel.pid_max, RLIMIT_NPROC) or ENOMEM — described for a
    /// RESOURCE_EXHAUSTED answer; null for any other failure. (CliWrap wraps the start failure around the OS error.)
    /// </summary>
    public static string? OutOfProcesses(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (inner is System.ComponentModel.Win32Exception { NativeErrorCode: 11 or 12 } os)
                return $"{os.Message} (errno {os.NativeErrorCode}): the node is out of processes or memory";
        return null;
    }
}
