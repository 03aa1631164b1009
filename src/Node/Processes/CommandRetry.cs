using Polly;
using Polly.Retry;
using SolarCsi.Core.Errors;

namespace SolarCsi.Node.Processes;

/// <summary>Bounded retries for tool failures that are known to be transient, recognised by their stderr.</summary>
public static class CommandRetry
{
    public static ResiliencePipeline WhenStderrContains(string text, int attempts, TimeSpan firstDelay) =>
        new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<CommandFailedException>(e => e.StandardError.Contains(text, StringComparison.OrdinalIgnoreCase)),
                MaxRetryAttempts = attempts,
                Delay = firstDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            })
            .Build();
}
