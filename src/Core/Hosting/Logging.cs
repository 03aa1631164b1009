using Serilog;
using Serilog.Events;

namespace SolarCsi.Core.Hosting;

public static class Logging
{
    public static Serilog.ILogger Create(string component, LogEventLevel level = LogEventLevel.Information) =>
        new LoggerConfiguration()
            .MinimumLevel.Is(level)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Grpc", LogEventLevel.Warning)
            .Enrich.WithProperty("Component", component)
            .WriteTo.Console(
                outputTemplate: "{Timestamp:yyyy-MM-ddTHH:mm:ss.fffZ} {Level:u3} [{Component}] {Message:lj}{NewLine}{Exception}",
                standardErrorFromLevel: LogEventLevel.Verbose)
            .CreateLogger();
}
