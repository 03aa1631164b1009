using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace SolarCsi.Core.Hosting;

/// <summary>A gRPC server on one endpoint. Each endpoint gets its own host so a service is reachable only where it is meant to be.</summary>
public static class GrpcServer
{
    /// <param name="tls">on a TCP endpoint: mutual TLS with the cluster's certificates, admitting the client identities
    /// <c>Allow</c> accepts; null serves plaintext (logged as such). Unix sockets are 0600 and take no TLS.</param>
    public static WebApplication Build(GrpcEndpoint endpoint, Serilog.ILogger logger, Action<IServiceCollection> services, Action<WebApplication> map,
        (Tls.ClusterTls Tls, Func<string, bool> Allow)? tls = null, bool certificateOptional = false)
    {
        var builder = PluginHost.CreateBuilder(logger);
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<CallLoggingInterceptor>();
            o.EnableDetailedErrors = true;
            o.MaxReceiveMessageSize = 4 * 1024 * 1024;
        });
        services(builder.Services);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (endpoint.IsUnix)
            {
                var path = endpoint.SocketPath!;
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                // A socket file left by a crashed predecessor would make bind fail.
                if (File.Exists(path)) File.Delete(path);
                kestrel.ListenUnixSocket(path, o => o.Protocols = HttpProtocols.Http2);
            }
            else
            {
                kestrel.Listen(endpoint.Address!, endpoint.Port, o =>
                {
                    o.Protocols = HttpProtocols.Http2;
                    if (tls is { } mutual) o.UseHttps(mutual.Tls.ServerOptions(mutual.Allow, certificateOptional));
                    else logger.Warning("serving {Endpoint} in plaintext: anyone who reaches it can call it (give --tls-dir)", endpoint);
                });
            }
        });
        var app = builder.Build();
        map(app);
        if (endpoint.IsUnix)
            app.Lifetime.ApplicationStarted.Register(() =>
                File.SetUnixFileMode(endpoint.SocketPath!, UnixFileMode.UserRead | UnixFileMode.UserWrite));
        return app;
    }
}
