using Grpc.Core;
using A = SolarCsi.Agent.V1;
using SolarCsi.Controller.Agents;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Validation;

namespace SolarCsi.Controller.Csi;

/// <summary>
/// Holds the writers of some volumes still (fsfreeze on the nodes that mount them, through their agents) while
/// snapshots are cut, and thaws every node it froze when disposed, whatever happened in between. Each freeze is a
/// lease on the node, so a controller that dies mid-way does not leave a filesystem frozen for good.
/// </summary>
internal sealed class WriterFreeze(AgentDirectory directory, string token) : IAsyncDisposable
{
    public static readonly TimeSpan Lease = TimeSpan.FromMinutes(5);
    private readonly List<string> _frozen = [];

    public string Token => token;

    /// <summary>
    /// Where each volume's writers are: a local volume on its own node; an NBD volume on every node it is attached to
    /// read-write (its storage host needs no freeze: nothing mounts the image there).
    /// </summary>
    public static IReadOnlyList<(string Node, List<string> Ids)> Sites(IReadOnlyList<StorageId> sources, IReadOnlyList<A.VolumeInfo> volumes)
    {
        var sites = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        for (var i = 0; i < sources.Count; i++)
        {
            var nodes = VolumeParameters.IsLocal(sources[i].Media)
                ? [sources[i].Node]
                : volumes[i].Publications.Where(p => !p.Readonly).Select(p => p.NodeId).ToArray();
            foreach (var node in nodes)
            {
                if (!sites.TryGetValue(node, out var ids)) sites[node] = ids = [];
                ids.Add(sources[i].ToString());
            }
        }
        return sites.Select(kv => (kv.Key, kv.Value)).ToArray();
    }

    public async Task FreezeAsync(IEnumerable<(string Node, List<string> Ids)> sites, CancellationToken ct)
    {
        foreach (var (node, ids) in sites)
        {
            if (!directory.IsKnown(node)) throw CsiErrors.Unavailable($"node {node}, which mounts {ids[0]}, has not announced itself");
            var freeze = new A.FreezeRequest { Token = token, LeaseSeconds = (int)Lease.TotalSeconds };
            freeze.VolumeIds.AddRange(ids);
            await directory.ClientFor(node).FreezeAsync(freeze, deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: ct);
            _frozen.Add(node);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _frozen)
        {
            try { await directory.ClientFor(node).ThawAsync(new A.ThawRequest { Token = token }, deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: CancellationToken.None); }
            catch (RpcException) { /* the lease thaws it; the operation's own outcome is what the CO must see */ }
        }
    }
}
