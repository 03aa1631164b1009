using Grpc.Core;
using Microsoft.Extensions.Logging;
using A = SolarCsi.Agent.V1;
using SolarCsi.Controller.Agents;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Validation;

namespace SolarCsi.Controller.Csi;

/// <summary>
/// Holds the writers of some volumes still (fsfreeze on the nodes that mount them, through their agents) while
/// snapshots are cut, and thaws every node it froze when disposed, whatever happened in between. Each freeze is a
/// lease on the node, so a controller that dies mid-way does not leave a filesystem frozen for good — which also
/// means a freeze can end before the cut (lease run out, node plugin restarted): <see cref="ThawAsync"/> says so,
/// and the caller must then not report the snapshot.
/// </summary>
internal sealed class WriterFreeze(AgentDirectory directory, string token, TimeSpan lease, ILogger logger) : IAsyncDisposable
{
    private readonly List<string> _frozen = [];
    private readonly System.Diagnostics.Stopwatch _held = new();

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
            var nodes = SolarCsi.Core.Media.MediaCatalog.Of(sources[i].Media).IsLocal
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
            var freeze = new A.FreezeRequest { Token = token, LeaseSeconds = (int)lease.TotalSeconds };
            freeze.VolumeIds.AddRange(ids);
            _held.Start();
            await directory.ClientFor(node).FreezeAsync(freeze, deadline: Inventory.Deadline(Inventory.ShortCall), cancellationToken: ct);
            _frozen.Add(node);
        }
    }

    /// <summary>
    /// Thaws every node frozen so far; answers the nodes whose freeze had already ended (or whose thaw could not be
    /// confirmed): there, writes may have gone on during the cut. Empty: every writer was held the whole time.
    /// </summary>
    public async Task<IReadOnlyList<string>> ThawAsync()
    {
        var lost = new List<string>();
        foreach (var node in _frozen)
        {
            try
            {
                var thawed = await directory.ClientFor(node).ThawAsync(new A.ThawRequest { Token = token }, deadline: Inventory.Deadline(Inventory.ShortCall),
                    cancellationToken: CancellationToken.None);
                if (!thawed.Held) lost.Add(node);
            }
            catch (RpcException e)
            {
                // Its lease thaws it; whether it held until now is unknown, so it counts as lost.
                logger.LogWarning("could not thaw {Token} on {Node}: {Status}", token, node, e.Status.Detail);
                lost.Add(node);
            }
        }
        if (_frozen.Count > 0)
            logger.LogInformation("writers for {Token} held {HeldMs} ms on {Nodes}", token, _held.ElapsedMilliseconds, string.Join(", ", _frozen));
        _frozen.Clear();
        return lost;
    }

    public async ValueTask DisposeAsync() => await ThawAsync();
}
