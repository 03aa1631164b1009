using Csi.V1;
using Grpc.Core;

namespace SolarCsi.Core.Hosting;

/// <summary>CSI Identity, shared by both plugins; they differ only in the capabilities they pass in.</summary>
public sealed class IdentityService(PluginIdentity identity, Readiness readiness) : Identity.IdentityBase
{
    public override Task<GetPluginInfoResponse> GetPluginInfo(GetPluginInfoRequest request, ServerCallContext context) =>
        Task.FromResult(new GetPluginInfoResponse { Name = identity.DriverName, VendorVersion = identity.Version });

    public override Task<GetPluginCapabilitiesResponse> GetPluginCapabilities(GetPluginCapabilitiesRequest request, ServerCallContext context)
    {
        var response = new GetPluginCapabilitiesResponse();
        response.Capabilities.AddRange(identity.Capabilities);
        return Task.FromResult(response);
    }

    public override Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context) =>
        Task.FromResult(new ProbeResponse { Ready = readiness.IsReady });
}
