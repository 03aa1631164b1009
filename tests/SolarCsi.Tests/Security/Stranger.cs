using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;

namespace SolarCsi.Tests.Security;

/// <summary>How a stranger calls a plugin's TLS endpoint: trusting any server, offering whatever certificate it has (or none).</summary>
internal static class Stranger
{
    public static GrpcChannel Channel(int port, X509Certificate2? certificate) =>
        GrpcChannel.ForAddress($"https://127.0.0.1:{port}", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                    LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate!,
                },
            },
        });

    /// <summary>The status a call ends with (OK when it returns).</summary>
    public static async Task<StatusCode> CodeOf(Func<Task> call)
    {
        try
        {
            await call();
            return StatusCode.OK;
        }
        catch (RpcException e) { return e.StatusCode; }
    }
}
