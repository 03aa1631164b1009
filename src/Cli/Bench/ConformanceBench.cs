using System.Diagnostics;
using System.Globalization;
using System.Text;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;
using SolarCsi.Local;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.Cli;

/// <summary>
/// The wall time of a fixed, conformance-like sequence of CSI calls (what csi-sanity and the conformance suite do:
/// every RPC, repeated calls for idempotency, each media's node life, snapshots and clones, expansion, bad input),
/// run several times against the same plugins, with the plugins' own per-call durations read back from their logs.
/// It is a regression watch, not a test: a call that answers an unexpected code is counted and reported.
/// `--logs DIR` instead summarises the logs of any LocalCluster run (e.g. a kept conformance-suite run).
/// </summary>
internal static class ConformanceBench
{
    private const long MiB = 1L << 20;

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = new CliArgs(args);
        var output = cli.Value("--out");
        if (cli.Value("--logs") is { } logs)
        {
            var summary = Summary(CsiCallLog.Read(logs), 1, $"the logs in {logs}");
            Console.WriteLine(summary);
            if (output is not null) await File.WriteAllTextAsync(output, summary);
            return 0;
        }
        var rounds = cli.Value("--rounds") is { } r ? int.Parse(r, CultureInfo.InvariantCulture) : 5;
        var root = Directory.CreateTempSubdirectory("solar-bench-conformance-").FullName;
        var wall = new Samples();
        var callsPerRound = 0;
        var unexpected = new List<string>();
        var calls = new List<CsiCallLog.Call>();
        try
        {
            var pools = new Dictionary<string, string> { ["node-a"] = """{ "tmpfs": [ { "name": "default", "capacity": "1Gi" } ] }""" };
            await using var cluster = await LocalCluster.StartAsync(root, ["node-a", "node-b"], Console.WriteLine, poolsConfig: pools,
                nbdFirstPort: BenchPorts.Conformance);
            var logDir = Path.Combine(root, "logs");
            // One unmeasured round: the client's first calls and the tools' first runs warm caches on both sides.
            await new Sequence(cluster, "warm").RunAsync();
            await Task.Delay(500);
            var (_, offsets) = CsiCallLog.ReadSince(logDir, new Dictionary<string, long>());
            for (var round = 1; round <= rounds; round++)
            {
                var sequence = new Sequence(cluster, $"r{round}");
                var clock = Stopwatch.StartNew();
                await sequence.RunAsync();
                wall.Add(clock.Elapsed);
                callsPerRound = sequence.Calls;
                unexpected.AddRange(sequence.Unexpected);
                Console.WriteLine($"round {round}/{rounds}: {sequence.Calls} calls in {clock.Elapsed.TotalSeconds:0.00} s, {sequence.Unexpected.Count} unexpected answers");
                // Let the plugins' last lines reach their logs before reading them.
                await Task.Delay(500);
                var (roundCalls, next) = CsiCallLog.ReadSince(logDir, offsets);
                offsets = next;
                calls.AddRange(roundCalls);
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }

        var report = Report(wall, callsPerRound, unexpected, calls, rounds);
        Console.WriteLine(report);
        if (output is not null) await File.WriteAllTextAsync(output, report);
        return unexpected.Count == 0 ? 0 : 1;
    }

    private static string Report(Samples wall, int callsPerRound, IReadOnlyList<string> unexpected, IReadOnlyList<CsiCallLog.Call> calls, int rounds)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Conformance-like sequence: wall time of its CSI calls");
        sb.AppendLine();
        sb.AppendLine($"`solar bench-conformance --rounds {rounds}`. Node plugin: `{BinaryLocator.Find().Node}`. One round is a fixed sequence of {callsPerRound} CSI calls");
        sb.AppendLine("made one after another (identity and capability calls on every plugin; for file ext4, file xfs with online expansion, file raw");
        sb.AppendLine("block, tmpfs and NBD ext4 volumes: create twice, validate, get, list, ControllerPublish twice, NodeStage twice, NodePublish");
        sb.AppendLine("twice, stats, unpublish/unstage/ControllerUnpublish/delete twice each; a snapshot taken twice, listed, restored and deleted");
        sb.AppendLine("twice, a clone; eight bad-input calls with their expected error codes), after one unmeasured round.");
        sb.AppendLine();
        sb.AppendLine($"Wall time per round: median {Samples.Ms(wall.Median)}, min {Samples.Ms(wall.Min)}, max {Samples.Ms(wall.Max)} ({rounds} rounds). " +
                      $"Calls that answered an unexpected code: {unexpected.Count}{(unexpected.Count > 0 ? " — " + string.Join("; ", unexpected.Take(5)) : "")}.");
        sb.AppendLine();
        sb.Append(Summary(calls, rounds, $"the {rounds} measured rounds"));
        return sb.ToString();
    }

    /// <summary>Per method: calls and the plugins' own time (duration_ms, whole milliseconds), per round.</summary>
    private static string Summary(IReadOnlyList<CsiCallLog.Call> calls, int rounds, string source)
    {
        var sb = new StringBuilder();
        var csi = calls.Where(c => c.Kind == "csi").ToArray();
        var agent = calls.Where(c => c.Kind == "agent").ToArray();
        sb.AppendLine($"From the plugins' per-call log lines in {source}: {csi.Length / rounds} CSI calls per round taking " +
                      $"{csi.Sum(c => c.Ms) / rounds:0} ms of plugin time (the controller's include the agent calls they make: " +
                      $"{agent.Length / rounds} per round, {agent.Sum(c => c.Ms) / rounds:0} ms).");
        if (csi.Length > 0 && rounds == 1)
            sb.AppendLine($"First to last CSI call: {(csi.Max(c => c.At) - csi.Min(c => c.At)).TotalSeconds:0.0} s.");
        sb.AppendLine();
        sb.AppendLine("| CSI method | calls per round | plugin ms per round | slowest call |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var group in csi.GroupBy(c => c.Method).OrderByDescending(g => g.Sum(c => c.Ms)).ThenBy(g => g.Key, StringComparer.Ordinal))
            sb.AppendLine($"| {group.Key} | {group.Count() / (double)rounds:0.#} | {group.Sum(c => c.Ms) / rounds:0} | {group.Max(c => c.Ms):0} ms |");
        return sb.ToString();
    }

    /// <summary>One round of calls; names carry the round's tag so every round starts from nothing.</summary>
    private sealed class Sequence(LocalCluster cluster, string tag)
    {
        public int Calls { get; private set; }
        public List<string> Unexpected { get; } = [];
        private Csi.V1.Controller.ControllerClient Controller => cluster.Controller.Controller;

        private async Task<T?> ExpectAsync<T>(string what, StatusCode expected, Func<Task<T>> call) where T : class
        {
            Calls++;
            try
            {
                var result = await call();
                if (expected != StatusCode.OK) Unexpected.Add($"{what}: OK, expected {expected}");
                return result;
            }
            catch (RpcException e) when (e.StatusCode == expected)
            {
                return null;
            }
            catch (RpcException e)
            {
                Unexpected.Add($"{what}: {e.StatusCode} ({e.Status.Detail}), expected {expected}");
                return null;
            }
        }

        private Task<T?> OkAsync<T>(string what, Func<Task<T>> call) where T : class => ExpectAsync(what, StatusCode.OK, call);

        public async Task RunAsync()
        {
            await IdentityAsync();
            await VolumeAsync("file", "ext4", 64 * MiB, "node-a", block: false, expandTo: 0);
            await VolumeAsync("file", "xfs", 320 * MiB, "node-a", block: false, expandTo: 384 * MiB);
            await VolumeAsync("file", "ext4", 64 * MiB, "node-a", block: true, expandTo: 0);
            await VolumeAsync("tmpfs", "tmpfs", 64 * MiB, "node-a", block: false, expandTo: 0);
            await VolumeAsync("nbd", "ext4", 64 * MiB, null, block: false, expandTo: 0);
            await SnapshotsAsync();
            await BadInputAsync();
        }

        private async Task IdentityAsync()
        {
            foreach (var identity in cluster.Nodes.Select(n => n.Identity).Prepend(cluster.Controller.Identity))
            {
                await OkAsync("GetPluginInfo", () => identity.GetPluginInfoAsync(new GetPluginInfoRequest()).ResponseAsync);
                await OkAsync("GetPluginCapabilities", () => identity.GetPluginCapabilitiesAsync(new GetPluginCapabilitiesRequest()).ResponseAsync);
                await OkAsync("Probe", () => identity.ProbeAsync(new ProbeRequest()).ResponseAsync);
            }
            await OkAsync("ControllerGetCapabilities", () => Controller.ControllerGetCapabilitiesAsync(new ControllerGetCapabilitiesRequest()).ResponseAsync);
            await OkAsync("GetCapacity", () => Controller.GetCapacityAsync(new GetCapacityRequest()).ResponseAsync);
            await OkAsync("GetCapacity node-a", () => Controller.GetCapacityAsync(new GetCapacityRequest
            {
                AccessibleTopology = new Topology { Segments = { NodeTopology.Of("node-a") } },
            }).ResponseAsync);
            await OkAsync("ListVolumes", () => Controller.ListVolumesAsync(new ListVolumesRequest()).ResponseAsync);
            await OkAsync("ListSnapshots", () => Controller.ListSnapshotsAsync(new ListSnapshotsRequest()).ResponseAsync);
            foreach (var node in cluster.Nodes)
            {
                await OkAsync("NodeGetCapabilities", () => node.Node.NodeGetCapabilitiesAsync(new NodeGetCapabilitiesRequest()).ResponseAsync);
                await OkAsync("NodeGetInfo", () => node.Node.NodeGetInfoAsync(new NodeGetInfoRequest()).ResponseAsync);
            }
        }

        private static VolumeCapability Capability(string fsType, bool block)
        {
            // Mount and Block are one oneof: assigning either (even null) replaces the other.
            var capability = new VolumeCapability { AccessMode = new VolumeCapability.Types.AccessMode { Mode = AccessMode.SingleNodeWriter } };
            if (block) capability.Block = new VolumeCapability.Types.BlockVolume();
            else capability.Mount = new VolumeCapability.Types.MountVolume { FsType = fsType };
            return capability;
        }

        private async Task VolumeAsync(string media, string fsType, long bytes, string? node, bool block, long expandTo)
        {
            var name = $"conf-{tag}-{media}-{fsType}{(block ? "-block" : "")}";
            var capability = Capability(fsType, block);
            var volume = new DriverVolume(cluster, name, media, bytes, fsType, node, capability);
            await OkAsync("CreateVolume", async () => { await volume.CreateAsync(); return ""; });
            if (volume.VolumeId.Length == 0) return;
            await OkAsync("CreateVolume again", async () => { await volume.CreateAsync(); return ""; });
            await OkAsync("ValidateVolumeCapabilities", () => Controller.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest
            {
                VolumeId = volume.VolumeId, VolumeCapabilities = { capability },
            }).ResponseAsync);
            await OkAsync("ControllerGetVolume", () => Controller.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId }).ResponseAsync);
            await OkAsync("ListVolumes page", () => Controller.ListVolumesAsync(new ListVolumesRequest { MaxEntries = 1 }).ResponseAsync);
            for (var i = 0; i < 2; i++) await OkAsync("ControllerPublishVolume", async () => { await volume.ControllerPublishAsync(); return ""; });
            for (var i = 0; i < 2; i++) await OkAsync("NodeStageVolume", async () => { await volume.StageAsync(); return ""; });
            for (var i = 0; i < 2; i++) await OkAsync("NodePublishVolume", async () => { await volume.PublishAsync(); return ""; });
            await OkAsync("NodeGetVolumeStats", () => volume.Node.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest
            {
                VolumeId = volume.VolumeId, VolumePath = volume.Target,
            }).ResponseAsync);
            if (expandTo > 0)
            {
                await OkAsync("ControllerExpandVolume", () => Controller.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
                {
                    VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = expandTo }, VolumeCapability = capability,
                }).ResponseAsync);
                await OkAsync("NodeExpandVolume", () => volume.Node.Node.NodeExpandVolumeAsync(new NodeExpandVolumeRequest
                {
                    VolumeId = volume.VolumeId, VolumePath = volume.Target, StagingTargetPath = volume.Staging,
                    CapacityRange = new CapacityRange { RequiredBytes = expandTo }, VolumeCapability = capability,
                }).ResponseAsync);
            }
            for (var i = 0; i < 2; i++) await OkAsync("NodeUnpublishVolume", async () => { await volume.UnpublishAsync(); return ""; });
            for (var i = 0; i < 2; i++) await OkAsync("NodeUnstageVolume", async () => { await volume.UnstageAsync(); return ""; });
            for (var i = 0; i < 2; i++) await OkAsync("ControllerUnpublishVolume", async () => { await volume.ControllerUnpublishAsync(); return ""; });
            for (var i = 0; i < 2; i++) await OkAsync("DeleteVolume", async () => { await volume.DeleteAsync(); return ""; });
        }

        private async Task SnapshotsAsync()
        {
            var capability = Capability("ext4", block: false);
            var source = new DriverVolume(cluster, $"conf-{tag}-snap-source", "file", 64 * MiB, "ext4", "node-a", capability);
            await OkAsync("CreateVolume", async () => { await source.CreateAsync(); return ""; });
            if (source.VolumeId.Length == 0) return;
            CreateSnapshotResponse? snapshot = null;
            for (var i = 0; i < 2; i++)
                snapshot = await OkAsync("CreateSnapshot", () => Controller.CreateSnapshotAsync(new CreateSnapshotRequest
                {
                    Name = $"conf-{tag}-snap", SourceVolumeId = source.VolumeId,
                }).ResponseAsync);
            var snapshotId = snapshot?.Snapshot.SnapshotId ?? "";
            await OkAsync("ListSnapshots by source", () => Controller.ListSnapshotsAsync(new ListSnapshotsRequest { SourceVolumeId = source.VolumeId }).ResponseAsync);
            var restored = await OkAsync("CreateVolume from snapshot", () => Controller.CreateVolumeAsync(new CreateVolumeRequest
            {
                Name = $"conf-{tag}-restored", CapacityRange = new CapacityRange { RequiredBytes = 64 * MiB }, VolumeCapabilities = { capability },
                VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = snapshotId } },
            }).ResponseAsync);
            var clone = await OkAsync("CreateVolume clone", () => Controller.CreateVolumeAsync(new CreateVolumeRequest
            {
                Name = $"conf-{tag}-clone", CapacityRange = new CapacityRange { RequiredBytes = 64 * MiB }, VolumeCapabilities = { capability },
                VolumeContentSource = new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = source.VolumeId } },
            }).ResponseAsync);
            foreach (var id in new[] { restored?.Volume.VolumeId, clone?.Volume.VolumeId }.OfType<string>())
                await OkAsync("DeleteVolume", () => Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = id }).ResponseAsync);
            for (var i = 0; i < 2; i++)
                await OkAsync("DeleteSnapshot", () => Controller.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = snapshotId }).ResponseAsync);
            await OkAsync("DeleteVolume", async () => { await source.DeleteAsync(); return ""; });
        }

        private async Task BadInputAsync()
        {
            var capability = Capability("ext4", block: false);
            var missing = "file~default~node-a~v" + new string('0', 24);
            var node = cluster.Nodes[0].Node;
            var staging = Path.Combine(cluster.KubeletDir, "bench", $"conf-{tag}-bad");
            await ExpectAsync("CreateVolume without a name", StatusCode.InvalidArgument, () => Controller.CreateVolumeAsync(new CreateVolumeRequest
            {
                VolumeCapabilities = { capability },
            }).ResponseAsync);
            await ExpectAsync("CreateVolume without capabilities", StatusCode.InvalidArgument, () => Controller.CreateVolumeAsync(new CreateVolumeRequest
            {
                Name = $"conf-{tag}-nocaps",
            }).ResponseAsync);
            await ExpectAsync("ControllerPublishVolume of a missing volume", StatusCode.NotFound, () => Controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = missing, NodeId = "node-a", VolumeCapability = capability,
            }).ResponseAsync);
            await ExpectAsync("NodeStageVolume of a missing volume", StatusCode.NotFound, () => node.NodeStageVolumeAsync(new NodeStageVolumeRequest
            {
                VolumeId = missing, StagingTargetPath = staging, VolumeCapability = capability,
            }).ResponseAsync);
            await ExpectAsync("NodePublishVolume without a target", StatusCode.InvalidArgument, () => node.NodePublishVolumeAsync(new NodePublishVolumeRequest
            {
                VolumeId = missing, StagingTargetPath = staging, VolumeCapability = capability,
            }).ResponseAsync);
            await ExpectAsync("NodeGetVolumeStats of a missing volume", StatusCode.NotFound, () => node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest
            {
                VolumeId = missing, VolumePath = staging,
            }).ResponseAsync);
            await OkAsync("DeleteVolume of a missing volume", () => Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = missing }).ResponseAsync);
            await OkAsync("DeleteSnapshot of a missing snapshot", () => Controller.DeleteSnapshotAsync(new DeleteSnapshotRequest
            {
                SnapshotId = "file~default~node-a~s" + new string('0', 24),
            }).ResponseAsync);
        }
    }
}
