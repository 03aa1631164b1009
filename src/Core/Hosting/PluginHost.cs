using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace SolarCsi.Core.Hosting;

/// <summary>
/// The web host under every endpoint: Kestrel, routing and our logger, and nothing else. The plugins take their
/// configuration from flags only. The default builders also read appsettings*.json, environment variables and user
/// secrets from the working directory, and watch that directory for changes — recursively, with one inotify watch
/// per directory: started from `/` (a container's working directory) a plugin walked the whole node's tree at start
/// (10,000+ watches here, and a file dropped into it could have re-pointed Kestrel's endpoints).
/// </summary>
public static class PluginHost
{
    public static WebApplicationBuilder CreateBuilder(Serilog.ILogger logger)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = [] });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.Host.UseSerilog(logger, dispose: false);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        return builder;
    }
}
