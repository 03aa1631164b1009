using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Validation;

namespace SolarCsi.Controller.Agents;

/// <summary>
/// What an agent answers is checked before the controller repeats it to the CO: a volume must be one the answering
/// node holds (its id names that node, and the one asked for when one was), and its volume_context may carry only
/// the keys the node plugin reads back at NodeStage, with values that agree with the id. Otherwise an agent that is
/// wrong — or not ours — could hand kubelet another node's volume or mkfs options nobody validated.
/// </summary>
public static class AgentReplies
{
    private static readonly HashSet<string> ContextKeys = [VolumeContextKeys.Media, VolumeContextKeys.Pool, VolumeContextKeys.MkfsOptions];

    /// <summary>The volume as answered by <paramref name="node"/>'s agent, or INTERNAL naming what was wrong.</summary>
    public static VolumeInfo RequireVolume(VolumeInfo volume, string node, StorageId? asked = null) =>
        WhyRefused(volume, node, asked) is { } why ? throw CsiErrors.Internal($"the agent of node {node} answered {why}; refused") : volume;

    public static string? WhyRefused(VolumeInfo volume, string node, StorageId? asked = null)
    {
        if (!StorageId.TryParse(volume.VolumeId, out var id) || !id.IsVolume) return $"with a volume id that is not one ('{StorageId.Printable(volume.VolumeId)}')";
        if (id.Node != node) return $"with volume {id}, which names node {id.Node}";
        if (asked is not null && id.ToString() != asked.ToString()) return $"with volume {id} for {asked}";
        if (volume.VolumeContext.Keys.FirstOrDefault(k => !ContextKeys.Contains(k)) is { } key) return $"volume {id} with volume_context key '{StorageId.Printable(key)}'";
        if (volume.VolumeContext.TryGetValue(VolumeContextKeys.Media, out var media) && media != id.Media) return $"volume {id} with media '{StorageId.Printable(media)}'";
        if (volume.VolumeContext.TryGetValue(VolumeContextKeys.Pool, out var pool) && pool != id.Pool) return $"volume {id} with pool '{StorageId.Printable(pool)}'";
        if (volume.VolumeContext.TryGetValue(VolumeContextKeys.MkfsOptions, out var mkfs))
        {
            try { VolumeParameters.ParseMkfsOptions(mkfs); }
            catch (Grpc.Core.RpcException) { return $"volume {id} with mkfs options that are not valid"; }
        }
        return null;
    }
}
