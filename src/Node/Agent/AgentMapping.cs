using Google.Protobuf.WellKnownTypes;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Agent;

internal static class AgentMapping
{
    public static VolumeInfo ToInfo(VolumeRecord r, IMediaPool pool, string? problem = null)
    {
        var info = new VolumeInfo
        {
            Abnormal = problem is not null, ConditionMessage = problem ?? "",
            VolumeId = r.VolumeId, Name = r.Name, CapacityBytes = r.CapacityBytes,
            Created = Timestamp.FromDateTimeOffset(r.Created),
            ContentSource = new ContentSource { SnapshotId = r.SourceSnapshotId ?? "", VolumeId = r.SourceVolumeId ?? "" },
        };
        info.Parameters.Add(r.Parameters);
        info.VolumeContext.Add(new Dictionary<string, string> { [VolumeContextKeys.Media] = pool.Media, [VolumeContextKeys.Pool] = pool.Name });
        if (r.Parameters.TryGetValue(VolumeParameters.MkfsOptionsKey, out var mkfs)) info.VolumeContext[VolumeContextKeys.MkfsOptions] = mkfs;
        info.Publications.AddRange(r.Publications.Select(p => new Publication
        {
            NodeId = p.NodeId, Readonly = p.ReadOnly, AccessMode = p.AccessMode, Block = p.Block,
        }));
        return info;
    }

    public static SnapshotInfo ToInfo(SnapshotRecord s) => new()
    {
        SnapshotId = s.SnapshotId, Name = s.Name, SourceVolumeId = s.SourceVolumeId, SizeBytes = s.SizeBytes,
        Created = Timestamp.FromDateTimeOffset(s.Created), Ready = true,
    };
}
