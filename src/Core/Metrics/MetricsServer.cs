using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace SolarCsi.Core.Metrics;

/// <summary>
/// Plain HTTP beside the gRPC endpoints: /metrics for Prometheus and /healthz for a liveness probe (the process
/// answers; whether it is ready is CSI Probe's business).
/// </summary>
public static class MetricsServer
{
    public static WebApplication Build(IPEndPoint address, Serilog.ILogger logger, PluginMetrics metrics)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Host.UseSerilog(logger, dispose: false);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(address));
        var app = builder.Build();
        app.MapGet("/metrics", async (HttpContext http) =>
        {
            var text = await metrics.RenderAsync(http.RequestAborted);
            return Results.Text(text, "text/plain; version=0.0.4; charset=utf-8");
        });
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        return app;
    }

    /// <summary>HOST:PORT, e.g. 0.0.0.0:9808 or 127.0.0.1:9808; FormatException otherwise.</summary>
    public static IPEndPoint ParseAddress(string text) =>
        IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port > 0
            ? endpoint
            : throw new FormatException($"'{text}' is not an address:port for metrics (e.g. 0.0.0.0:9808)");
}
