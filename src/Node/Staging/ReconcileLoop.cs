using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace SolarCsi.Node.Staging;

/// <summary>Runs the reconciler every interval after the start-up pass, so residue left by failures that no CO retries is cleaned.</summary>
public sealed class ReconcileLoop(NodeReconciler reconciler, NodeOptions options, ILogger<ReconcileLoop> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.ReconcileInterval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(options.ReconcileInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try { await reconciler.RunAsync(stoppingToken); }
            catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "periodic reconcile failed"); }
        }
    }
}
