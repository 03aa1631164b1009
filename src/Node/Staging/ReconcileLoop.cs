using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace SolarCsi.Node.Staging;

/// <summary>
/// Runs the reconciler every interval after the start-up pass, so residue left by failures that no CO retries is
/// cleaned, and restarts exports that should be serving (a dead server, a restarted data-plane pod).
/// </summary>
public sealed class ReconcileLoop(NodeReconciler reconciler, Nbd.NbdExports exports, NodeOptions options, ILogger<ReconcileLoop> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.ReconcileInterval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(options.ReconcileInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try { await reconciler.RunAsync(stoppingToken); }
            catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "periodic reconcile failed"); }
            await exports.RestoreStoppedAsync(stoppingToken);
        }
    }
}
