using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace SolarCsi.Core.Metrics;

/// <summary>
/// Plain HTTP beside the gRPC endpoints: /metrics for Prometheus and /healthz for a liveness probe (the process
/// answers; whether it is ready is CSI Probe's business).
/// </summary>
public static class MetricsServer
{
    public static WebApplication Build(IPEndPoint address, Serilog.ILogger logger, PluginMetrics metrics)
    {
        var builder = SolarCsi.Core.Hosting.PluginHost.CreateBuilder(logger);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(address));
        var app = builder.Build();
        // RequestDelegate handlers, not minimal-API delegates: those are bound by reflection (RequestDelegateFactory),
        // which the NativeAOT plugins cannot rely on, and two fixed texts need no binding.
        app.MapGet("/metrics", async http =>
            await WriteTextAsync(http, await metrics.RenderAsync(http.RequestAborted), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/healthz", http => WriteTextAsync(http, "ok\n", "text/plain; charset=utf-8"));
        return app;
    }

    private static Task WriteTextAsync(HttpContext http, string text, string contentType)
    {
        http.Response.ContentType = contentType;
        return http.Response.WriteAsync(text, http.RequestAborted);
    }

    /// <summary>HOST:PORT, e.g. 0.0.0.0:9808 or 127.0.0.1:9808; FormatException otherwise.</summary>
    public static IPEndPoint ParseAddress(string text) =>
        IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port > 0
            ? endpoint
            : throw new FormatException($"'{text}' is not an address:port for metrics (e.g. 0.0.0.0:9808)");
}
