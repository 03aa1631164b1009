using Csi.V1;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Validation;

namespace SolarCsi.Controller.Csi;

internal static class CsiMapping
{
    public static Volume ToCsi(VolumeInfo v)
    {
        // Local volumes are reachable only from their node; remote ones from every node.
        var topology = StorageId.TryParse(v.VolumeId, out var id) && SolarCsi.Core.Media.MediaCatalog.Find(id.Media) is { IsLocal: true } ? NodeTopology.Of(id.Node) : null;
        var volume = new Volume { VolumeId = v.VolumeId, CapacityBytes = v.CapacityBytes };
        volume.VolumeContext.Add(v.VolumeContext);
        if (v.ContentSource is { SnapshotId.Length: > 0 } s)
            volume.ContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = s.SnapshotId } };
        else if (v.ContentSource is { VolumeId.Length: > 0 } c)
            volume.ContentSource = new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = c.VolumeId } };
        if (topology is { Count: > 0 })
        {
            var t = new Topology();
            t.Segments.Add(topology);
            volume.AccessibleTopology.Add(t);
        }
        return volume;
    }

    public static VolumeCondition ConditionOf(VolumeInfo v) =>
        new() { Abnormal = v.Abnormal, Message = v.Abnormal ? v.ConditionMessage : "healthy" };

    public static Snapshot ToCsi(SnapshotInfo s) => new()
    {
        SnapshotId = s.SnapshotId, SourceVolumeId = s.SourceVolumeId, SizeBytes = s.SizeBytes, CreationTime = s.Created, ReadyToUse = s.Ready,
        GroupSnapshotId = s.GroupSnapshotId,
    };
}
