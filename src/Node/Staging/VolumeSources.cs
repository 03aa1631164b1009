using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Media;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Staging;

/// <summary>
/// Where a volume's data comes from on this node, asked of its medium: a local medium's from its own pool; a remote
/// one's from the connection its publish_context names, kept (key 0600) in a client directory under
/// <paramref name="remoteRoot"/> for the attach path and removed when the volume leaves the node.
/// </summary>
public sealed class VolumeSources(PoolSet pools, string remoteRoot)
{
    private string ClientDirOf(string volumeId) => Path.Combine(remoteRoot, volumeId);

    private static bool IsLocal(string volumeId) => MediaCatalog.Of(StorageId.ParseVolume(volumeId).Media).IsLocal;

    /// <summary>The attach source for a stage, and whether it may be written.</summary>
    public async Task<(string Source, bool ReadOnly)> PrepareAsync(StageRequest request, CancellationToken ct)
    {
        if (!IsLocal(request.VolumeId))
        {
            var connection = NbdConnection.FromContext(request.PublishContext);
            if (connection.Identity != pools.NodeId)
                throw CsiErrors.InvalidArgument($"publish_context admits node {connection.Identity}, not this node ({pools.NodeId})");
            var dir = ClientDirOf(request.VolumeId);
            await NbdClientDirectory.WriteAsync(dir, connection, ct);
            return (dir, connection.ReadOnly);
        }
        var pool = pools.Owning(request.VolumeId);
        if (pool.GetVolume(request.VolumeId) is null) throw CsiErrors.NotFound($"volume {request.VolumeId} not found");
        return (await pool.PrepareBackingAsync(request.VolumeId, ct), false);
    }

    /// <summary>The source a volume had here, without preparing anything; null when there is none to find.</summary>
    public string? Find(string volumeId)
    {
        if (!IsLocal(volumeId)) return Directory.Exists(ClientDirOf(volumeId)) ? ClientDirOf(volumeId) : null;
        try { return pools.Owning(volumeId).BackingPathOf(volumeId); }
        catch (Grpc.Core.RpcException) { return null; }
    }

    /// <summary>Remote volumes that have a client directory here, whatever the journal says (a crash may have left one).</summary>
    public IEnumerable<(StorageId Volume, string Directory)> RemoteClients()
    {
        if (!Directory.Exists(remoteRoot)) yield break;
        foreach (var dir in Directory.EnumerateDirectories(remoteRoot))
            if (StorageId.TryParse(Path.GetFileName(dir), out var id) && id.IsVolume && MediaCatalog.Find(id.Media) is { IsLocal: false })
                yield return (id, dir);
    }

    /// <summary>A remote volume's client directory holds its key: it goes when the volume leaves the node.</summary>
    public void Forget(string volumeId)
    {
        if (Directory.Exists(ClientDirOf(volumeId))) Directory.Delete(ClientDirOf(volumeId), recursive: true);
    }
}
