using Grpc.Core;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Core.Ids;

namespace SolarCsi.Controller.Agents;

/// <param name="issuer">registered only when the controller holds the CA (--ca-dir).</param>
public sealed class RegistryService(AgentDirectory directory, ControllerOptions options, NodeCertificateIssuer? issuer = null) : Registry.RegistryBase
{
    public override async Task<IssuedCertificate> IssueCertificate(CertificateSigningRequest request, ServerCallContext context)
    {
        if (issuer is null) throw new RpcException(new Status(StatusCode.FailedPrecondition, "this controller issues no certificates (it has no --ca-dir)"));
        if (context.GetHttpContext().Connection.RemoteIpAddress is not null && options.Tls is null)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, "certificates are issued over TLS only"));
        var caller = context.GetHttpContext().Connection.ClientCertificate is { } peer ? ClusterTls.NameOf(peer) : null;
        return await issuer.IssueAsync(request, caller, context.CancellationToken);
    }

    public override Task<HeartbeatResponse> Heartbeat(AgentAnnouncement request, ServerCallContext context)
    {
        // The node id ends up inside volume ids; refuse anything the id grammar would not accept.
        if (!StorageId.IsValidNode(request.NodeId))
            throw CsiErrors.InvalidArgument($"node id '{request.NodeId}' is not valid");
        try { GrpcEndpoint.Parse(request.Endpoint); }
        catch (FormatException e) { throw CsiErrors.InvalidArgument(e.Message); }
        // Over mutual TLS a node's certificate speaks for that node only (a unix socket has no certificate: 0600). The
        // handshake checked its chain (ControllerPlane.BuildRegistry); its name is what is left to check.
        var connection = context.GetHttpContext().Connection;
        var peer = connection.ClientCertificate;
        if (options.Tls is not null && connection.RemoteIpAddress is not null && peer is null)
            throw new RpcException(new Status(StatusCode.Unauthenticated, "a node announces itself with its certificate (see IssueCertificate)"));
        if (options.Tls is not null && peer is not null && ClusterTls.NodeIdOf(ClusterTls.NameOf(peer)) != request.NodeId)
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"this certificate does not speak for node {request.NodeId}"));
        directory.Record(request, peer?.ExportCertificatePem(), connection.RemoteIpAddress);
        return Task.FromResult(new HeartbeatResponse { IntervalSeconds = (int)Math.Max(1, options.AgentTimeout.TotalSeconds / 4) });
    }
}
