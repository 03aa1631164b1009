using SolarCsi.Core.Ids;
using SolarCsi.Core.Metrics;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Staging;

namespace SolarCsi.Node;

/// <summary>The node's scrape-time gauges: what each pool holds, and whether each staged volume's attachment works.</summary>
public static class NodeMetrics
{
    public static void Register(PluginMetrics metrics, PoolSet pools, NodeJournal journal, StagedVolumes volumes, string stateDir)
    {
        metrics.AddCollector(_ => Task.FromResult<IEnumerable<GaugeSample>>(
        [
            new("solar_state_files_unreadable", "state files set aside as unreadable (solar node-state lists them)", [],
                SolarCsi.Core.Storage.StateFiles.FindUnreadable(stateDir).Count),
        ]));
        metrics.AddCollector(_ => Task.FromResult(pools.All.SelectMany(p =>
        {
            var info = pools.Describe(p);
            KeyValuePair<string, string>[] labels = [new("media", p.Media), new("pool", p.Name)];
            return new GaugeSample[]
            {
                new("solar_pool_capacity_bytes", "bytes a pool can hand out in all", labels, info.TotalBytes),
                new("solar_pool_free_bytes", "bytes a pool can still hand out", labels, info.FreeBytes),
                new("solar_pool_volumes", "volumes a pool holds", labels, p.ListVolumes().Count),
                new("solar_pool_unavailable", "1 while a host tool the pool needs is missing (it takes no volumes)", labels,
                    info.Unavailable.Length > 0 ? 1 : 0),
            };
        })));
        metrics.AddCollector(async ct =>
        {
            var samples = new List<GaugeSample>();
            foreach (var entry in journal.All())
            {
                var media = StorageId.TryParse(entry.VolumeId, out var id) ? id.Media : "";
                var healthy = entry.Phase == StagePhase.Staged && await volumes.ConditionAsync(entry, ct) is null;
                var (name, help) = (SolarCsi.Core.Media.MediaCatalog.Find(media) ?? SolarCsi.Core.Media.MediaCatalog.File).AttachmentHealthMetric;
                samples.Add(new GaugeSample(name, help, [new("volume_id", entry.VolumeId), new("media", media)], healthy ? 1 : 0));
            }
            return samples;
        });
    }
}
