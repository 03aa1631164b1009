using SolarCsi.Core.Errors;
using SolarCsi.Node.Pools;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.Node.Agent;

/// <summary>Who may hold a volume at once, per CSI access mode.</summary>
public static class PublicationRules
{
    /// <summary>The publications after admitting <paramref name="wanted"/>; unchanged when it is a repeat.</summary>
    public static List<PublicationRecord> Admit(string volumeId, IReadOnlyList<PublicationRecord> current, PublicationRecord wanted)
    {
        if (current.FirstOrDefault(p => p.NodeId == wanted.NodeId) is { } same)
        {
            if (same == wanted) return [.. current];
            throw CsiErrors.AlreadyExists(
                $"volume {volumeId} is already published to node {wanted.NodeId} with a different capability or readonly flag");
        }
        var others = current.Where(p => p.NodeId != wanted.NodeId).ToArray();
        if (others.Length > 0 && (IsSingleNode(wanted.AccessMode) || others.Any(o => IsSingleNode(o.AccessMode))))
            throw CsiErrors.FailedPrecondition(
                $"volume {volumeId} is single-node and already published to node {others[0].NodeId}; unpublish it there first");
        return [.. current, wanted];
    }

    public static bool IsReadOnlyMode(int mode) => (AccessMode)mode is AccessMode.SingleNodeReaderOnly or AccessMode.MultiNodeReaderOnly;

    public static bool IsSingleNode(int mode) => (AccessMode)mode is AccessMode.SingleNodeWriter or AccessMode.SingleNodeReaderOnly
        or AccessMode.SingleNodeSingleWriter or AccessMode.SingleNodeMultiWriter;
}
