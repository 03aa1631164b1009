using Grpc.Core;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Ids;

namespace SolarCsi.Controller.Agents;

public sealed class RegistryService(AgentDirectory directory, ControllerOptions options) : Registry.RegistryBase
{
    public override Task<HeartbeatResponse> Heartbeat(AgentAnnouncement request, ServerCallContext context)
    {
        // The node id ends up inside volume ids; refuse anything the id grammar would not accept.
        if (!StorageId.IsValidNode(request.NodeId))
            throw CsiErrors.InvalidArgument($"node id '{request.NodeId}' is not valid");
        try { GrpcEndpoint.Parse(request.Endpoint); }
        catch (FormatException e) { throw CsiErrors.InvalidArgument(e.Message); }
        directory.Record(request);
        return Task.FromResult(new HeartbeatResponse { IntervalSeconds = (int)Math.Max(1, options.AgentTimeout.TotalSeconds / 4) });
    }
}
