using SolarCsi.Core.Storage;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Processes;
using SolarCsi.Node.Staging;

namespace SolarCsi.Node.Inspection;

/// <summary>
/// Reads a node plugin's state directory (journal, pool images, NBD client directories) and the kernel's view
/// (mountinfo, losetup) without the plugin, so an operator can see a stuck node even when the plugin is down, and
/// lists the disagreements with what could safely be done about each. "Attached" is asked of the entry's own attach
/// path, as the plugin asks it (a loop over the image, a connected nbd device, a tmpfs at its home).
/// </summary>
public sealed class NodeInspection(IMounter mounter, LoopDevices loops, AttacherSet attachers)
{
    public async Task<NodeReport> InspectAsync(string stateDir, CancellationToken ct)
    {
        var layout = new NodeStateLayout(stateDir);
        var entries = NodeJournal.ReadAll(layout.Journal).OrderBy(e => e.VolumeId, StringComparer.Ordinal).ToArray();
        var mounts = await mounter.ListAsync(ct);
        var loopDevices = await loops.ListAsync(ct);
        var volumes = new List<VolumeState>();
        var findings = new List<Finding>();

        foreach (var e in entries)
        {
            var (attached, whyNot) = await AttachedAsync(e, ct);
            var stagingMounted = e.Device is not null && mounts.Holds(e.StagingPath, e.Device);
            var targetsMounted = e.Targets.Where(t => e.Device is not null && mounts.Holds(t.Path, e.Device)).Select(t => t.Path).ToArray();
            volumes.Add(new VolumeState(e.VolumeId, e.Phase.ToString(), e.StagingPath, e.Device, e.Block, attached, stagingMounted,
                e.Targets.Select(t => t.Path).ToArray(), targetsMounted));

            if (e.Phase == StagePhase.Unstaging)
                findings.Add(new Finding("interrupted-unstage", e.VolumeId,
                    $"an unstage of {e.StagingPath} did not finish; the node plugin's reconciler or kubelet's retry finishes it", []));
            else if (e.Phase == StagePhase.Staging)
                findings.Add(new Finding("unfinished-stage", e.VolumeId,
                    "a stage did not finish (or its attachment broke); publish is refused until kubelet stages it again", []));
            else if (!attached)
                findings.Add(whyNot is null
                    ? new Finding("device-gone", e.VolumeId, $"the journal says staged on {e.Device}, which is no longer attached to {e.Source}", [])
                    : new Finding("attachment-unreadable", e.VolumeId, whyNot, []));
            else if (!e.Block && !stagingMounted)
                findings.Add(new Finding("staging-not-mounted", e.VolumeId, $"the journal says staged, but {e.StagingPath} is not a mount of {e.Device}", []));
            foreach (var target in e.Targets.Select(t => t.Path).Except(targetsMounted))
                findings.Add(new Finding("target-not-mounted", e.VolumeId, $"published at {target} in the journal, but nothing of the volume is mounted there", []));
        }

        // Loop devices over this node's own volume images that no journal entry explains (ceph-csi#510 residue).
        var explained = entries.Where(e => e.Device is not null).Select(e => e.Device!).ToHashSet(StringComparer.Ordinal);
        var images = new BackingFileIndex<string>(OurImages(layout).Select(i => (i.Key, i.Value)));
        foreach (var loop in loopDevices.Where(l => !explained.Contains(l.Name)))
        {
            if (!images.TryFind(loop, out _, out var volumeId)) continue;
            var users = mounts.PlacesOf(loop.Name);
            if (users.Count == 0)
                findings.Add(new Finding("residual-loop", volumeId, $"{loop.Name} over {loop.BackingFile} is attached but nothing uses it",
                    [new CleanupAction("detach-loop", loop.Name)]));
            else if (users.All(IsStagingPath))
                findings.Add(new Finding("residual-staging-mount", volumeId,
                    $"{loop.Name} over {loop.BackingFile} is mounted only at staging path(s) {string.Join(", ", users)} that no journal entry explains",
                    [.. users.OrderByDescending(u => u.Length).Select(u => new CleanupAction("unmount", u)), new CleanupAction("detach-loop", loop.Name)]));
            else
                findings.Add(new Finding("unexplained-in-use", volumeId,
                    $"{loop.Name} over {loop.BackingFile} is mounted at {string.Join(", ", users)} (a pod may be using it); left for a human", []));
        }

        // NBD client directories of volumes the journal no longer knows (the plugin's reconciler removes them).
        if (Directory.Exists(layout.RemoteClients))
            foreach (var dir in Directory.EnumerateDirectories(layout.RemoteClients).Where(d => entries.All(e => e.Source != d)))
                findings.Add(new Finding("residual-nbd-attachment", Path.GetFileName(dir),
                    $"NBD client state {dir} without a journal entry; a running node plugin's reconciler removes it", []));
        findings.AddRange(StateFileFindings(layout, loopDevices));
        return new NodeReport(stateDir, volumes, findings);
    }

    /// <summary>
    /// Whether the entry's device is still attached to its source, asked of its own attach path; when that cannot be
    /// told (an attach path this host does not run, a source bound twice), why — the report goes on either way.
    /// </summary>
    private async Task<(bool Attached, string? WhyNot)> AttachedAsync(JournalEntry e, CancellationToken ct)
    {
        if (e.Device is null) return (false, null);
        if (attachers.FindKind(e.AttachKind) is not { } attacher)
            return (false, $"attached through '{e.AttachKind}', which this host does not use (it uses '{attachers.Nbd.Kind}' for NBD); ask the plugin that staged it");
        try
        {
            return (await attacher.FindAttachedAsync(e.Source, ct) == e.Device, null);
        }
        catch (Exception ex) when (ex is Grpc.Core.RpcException or IOException or SolarCsi.Core.Errors.CommandFailedException)
        {
            return (false, $"cannot tell whether {e.Device} is attached to {e.Source}: {(ex is Grpc.Core.RpcException r ? r.Status.Detail : ex.Message)}");
        }
    }

    /// <summary>
    /// State files the plugin set aside as unreadable, and volume images no record explains. Neither is ever removed
    /// by the plugin; cleanup removes them only when asked (--apply), and never an image a loop device still uses.
    /// </summary>
    private static IEnumerable<Finding> StateFileFindings(NodeStateLayout layout, IReadOnlyList<LoopDevice> loopDevices)
    {
        // In use: attached as a loop device here, or served by an NBD export (nbdkit file=IMAGE) to other nodes.
        var served = ServedImages().ToHashSet(StringComparer.Ordinal);
        bool InUse(string image) => served.Contains(image) || loopDevices.Any(l => l.IsBackedBy(image, FileIdentity.TryKeyOf(image)));
        foreach (var aside in StateFiles.FindUnreadable(layout.Root))
        {
            var original = StateFiles.OriginalOf(aside);
            if (File.Exists(original))
            {
                yield return new Finding("repaired-state-file", Path.GetFileNameWithoutExtension(original),
                    $"{original} was unreadable and has been put back; {aside} is only the old copy", [new CleanupAction("remove-file", aside)]);
                continue;
            }
            var image = Path.ChangeExtension(original, ".img");
            var isVolumeRecord = Path.GetFileName(Path.GetDirectoryName(original)) == "volumes" && original.EndsWith(".json", StringComparison.Ordinal);
            List<CleanupAction> actions = [];
            var detail = $"{original} could not be read; it was moved aside to {aside}. Put a repaired file back at {original}, or remove what it described";
            if (isVolumeRecord && File.Exists(image))
            {
                detail += $"; the volume's image {image} is kept";
                if (InUse(image)) detail += " and is attached (left for a human)";
                else actions.Add(new CleanupAction("remove-file", image));
            }
            actions.Add(new CleanupAction("remove-file", aside));
            yield return new Finding("unreadable-state-file", Path.GetFileNameWithoutExtension(original), detail, actions);
        }
        if (!Directory.Exists(layout.Pools)) yield break;
        foreach (var image in Directory.EnumerateFiles(layout.Pools, "*.img", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var record = Path.ChangeExtension(image, ".json");
            if (File.Exists(record) || StateFiles.IsUnreadable(record)) continue;
            yield return InUse(image)
                ? new Finding("unrecorded-image", Path.GetFileNameWithoutExtension(image), $"{image} has no record and is attached (left for a human)", [])
                : new Finding("unrecorded-image", Path.GetFileNameWithoutExtension(image),
                    $"{image} has no record (an interrupted create, or a record removed by hand); a create of the same name adopts it", [new CleanupAction("remove-file", image)]);
        }
    }

    /// <summary>Carries out the findings' actions, re-inspecting first so that only residue that is still there is touched.</summary>
    public async Task<IReadOnlyList<string>> CleanUpAsync(string stateDir, Action<string> progress, CancellationToken ct)
    {
        var done = new List<string>();
        foreach (var finding in (await InspectAsync(stateDir, ct)).Findings.Where(f => f.Actions.Count > 0))
        {
            progress($"{finding.Kind} {finding.VolumeId}: {finding.Detail}");
            foreach (var action in finding.Actions)
            {
                switch (action.Kind)
                {
                    case "unmount": await mounter.UnmountAsync(action.Path, ct); break;
                    case "remove-file": AtomicFile.Delete(action.Path); break;
                    default: await loops.DetachAsync(action.Path, ct); break;
                }
                var line = $"{action.Kind} {action.Path}";
                progress("  done: " + line);
                done.Add(line);
            }
        }
        return done;
    }

    /// <summary>Images that a running nbdkit serves (its argv carries file=IMAGE).</summary>
    private static IEnumerable<string> ServedImages() =>
        Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0)
            .Select(Pid.CommandLine)
            .Where(argv => argv is { Count: > 0 } && Path.GetFileName(argv[0]) == "nbdkit")
            .SelectMany(argv => argv!.Where(a => a.StartsWith("file=", StringComparison.Ordinal)).Select(a => a["file=".Length..]));

    /// <summary>kubelet's staging paths (…/plugins/kubernetes.io/csi/…), never a pod's volume directory.</summary>
    private static bool IsStagingPath(string path) =>
        path.Contains("/plugins/kubernetes.io/csi/", StringComparison.Ordinal) && !path.Contains("/pods/", StringComparison.Ordinal);

    /// <summary>Volume images of this node's file and nbd pools, by path.</summary>
    private static Dictionary<string, string> OurImages(NodeStateLayout layout)
    {
        var images = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var poolDir in layout.ExistingPoolDirs())
        {
            if (!Directory.Exists(Path.Combine(poolDir, "volumes"))) continue;
            foreach (var record in new PoolRecords(poolDir).ListVolumes())
                images[Path.Combine(poolDir, "volumes", PoolRecords.NameOf(record.VolumeId) + ".img")] = record.VolumeId;
        }
        return images;
    }
}
