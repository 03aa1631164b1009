using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using SolarCsi.Core.Errors;

namespace SolarCsi.Core.Hosting;

/// <summary>
/// One structured log line and one latency observation per call (method, volume, duration, code), and the last line of defence that turns
/// an unexpected exception into INTERNAL with a message instead of UNKNOWN.
/// </summary>
public sealed class CallLoggingInterceptor(ILogger<CallLoggingInterceptor> logger) : Interceptor
{
    private static readonly string[] IdFields = ["volume_id", "source_volume_id", "snapshot_id", "name"];

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var watch = Stopwatch.StartNew();
        var method = context.Method[(context.Method.LastIndexOf('/') + 1)..];
        var volume = request is IMessage message ? SubjectOf(message) : "";
        var code = StatusCode.OK;
        using var inFlight = Metrics.PluginMetrics.Current.TrackInFlight(method);
        try
        {
            return await continuation(request, context);
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            logger.LogDebug("{Method} {VolumeId}: {Detail}", method, volume, e.Status.Detail);
            throw;
        }
        catch (Exception e) when (e is not OperationCanceledException || !context.CancellationToken.IsCancellationRequested)
        {
            code = e is TimeoutException ? StatusCode.DeadlineExceeded : StatusCode.Internal;
            // What a failed tool or I/O said helps whoever reads the CO's events; anything else is a bug, whose
            // message (types, paths, state) is for the operator's log only: the caller gets a reference to it.
            var reference = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
            logger.LogError(e, "{Method} {VolumeId} failed (ref {Reference})", method, volume, reference);
            var detail = e is CommandFailedException or TimeoutException or IOException
                ? e.Message
                : $"internal error (ref {reference}); the plugin's log has the details";
            throw new RpcException(new Status(code, detail));
        }
        finally
        {
            Metrics.PluginMetrics.Current.ObserveCall(method, code.ToString(), watch.Elapsed);
            logger.LogInformation("csi {Method} volume={VolumeId} code={Code} duration_ms={DurationMs}",
                method, volume, code, watch.ElapsedMilliseconds);
        }
    }

    private static string SubjectOf(IMessage message)
    {
        foreach (var name in IdFields)
            if (message.Descriptor.FindFieldByName(name) is { } field && field.FieldType == Google.Protobuf.Reflection.FieldType.String &&
                !field.IsRepeated && field.Accessor.GetValue(message) is string { Length: > 0 } value)
                return value.Length > 160 ? value[..160] : value;
        return "";
    }
}
