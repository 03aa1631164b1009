using Grpc.Core;
using Grpc.Net.Client;
using Polly;
using Polly.Retry;
using SolarCsi.Core.Errors;
using SolarCsi.DataPlane.V1;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.DataPlane;

/// <summary>Starts the plugin's helpers through the node's data-plane host, so they belong to its container.</summary>
public sealed class DataPlaneSpawner(GrpcChannel channel, string endpoint) : IDaemonSpawner
{
    private readonly SolarCsi.DataPlane.V1.DataPlane.DataPlaneClient _client = new(channel);

    /// <summary>Only a refused connection is retried (the host restarting): a call that reached it may have started
    /// the helper, and a second copy must not race the first for its port or mount.</summary>
    private static readonly ResiliencePipeline Retry = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<RpcException>(e => e.StatusCode == StatusCode.Unavailable),
            MaxRetryAttempts = 4, Delay = TimeSpan.FromMilliseconds(500), BackoffType = DelayBackoffType.Exponential,
        })
        .Build();

    public async Task SpawnAsync(string program, IReadOnlyList<string> args, string logFile, CancellationToken ct)
    {
        HostTools.Require(program);
        var request = new StartRequest { Program = program, LogFile = logFile, Args = { args } };
        try
        {
            await Retry.ExecuteAsync(async token =>
                await _client.StartAsync(request, deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: token), ct);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            throw CsiErrors.Unavailable($"the node's data-plane host ({endpoint}) does not answer, so {program} cannot be started: {e.Status.Detail}");
        }
    }

    /// <summary>
    /// Start-up check: the plugin finds, checks and stops the helpers by pid, so it must see the data-plane host's
    /// processes (hostPID on both DaemonSets) and share its state directory. Waits for the host to come up.
    /// </summary>
    public async Task<string?> ProblemAsync(string stateDir, TimeSpan wait, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            try
            {
                var reply = await _client.DescribeAsync(new DescribeRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
                if (reply.StateDir != stateDir)
                    return $"the data-plane host at {endpoint} serves state dir {reply.StateDir}, this plugin uses {stateDir}";
                if (!(Pid.CommandLine(reply.Pid) is { } argv && argv.Contains(DataPlaneHost.Command)))
                    return $"the data-plane host at {endpoint} is pid {reply.Pid} in its own pid namespace, which this plugin cannot see: " +
                           "run both with the host's pid namespace (hostPID: true)";
                return null;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500, ct);
            }
            catch (RpcException e)
            {
                return $"the data-plane host at {endpoint} does not answer: {e.Status.Detail}";
            }
        }
    }
}
