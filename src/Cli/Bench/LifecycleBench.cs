using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Csi.V1;
using SolarCsi.Local;
using SolarCsi.Node;
using SolarCsi.Node.Staging;

namespace SolarCsi.Cli;

/// <summary>
/// Many volumes through their whole life on one node — create, ControllerPublish, stage, publish, unpublish, unstage,
/// ControllerUnpublish, delete — one after another and then with several volumes in flight at once, as a CO does when
/// a StatefulSet scales. Reports per-call latency, the total, the errors and what is left behind (all must be 0).
/// </summary>
internal static class LifecycleBench
{
    private static readonly string[] Ops =
        ["CreateVolume", "ControllerPublishVolume", "NodeStageVolume", "NodePublishVolume", "NodeUnpublishVolume", "NodeUnstageVolume",
         "ControllerUnpublishVolume", "DeleteVolume", "whole life"];

    private sealed record Level(int Parallel, SampleSet Samples, TimeSpan Total, IReadOnlyList<string> Errors, int Retries, Leftovers Leftovers,
        int VolumesLeft, int JournalEntriesLeft);

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = new CliArgs(args);
        var volumes = Int(cli, "--volumes", 100);
        var levels = (cli.Value("--parallel") ?? "1,8,32,100").Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        var media = cli.Value("--media") ?? "file";
        var bytes = (long)Int(cli, "--size-mib", 64) << 20;
        var fsType = media == "tmpfs" ? "tmpfs" : cli.Value("--fs") ?? "ext4";
        var output = cli.Value("--out");

        var root = Directory.CreateTempSubdirectory("solar-bench-lifecycle-").FullName;
        var results = new List<Level>();
        var clock = Stopwatch.StartNew();
        // Disk volumes each take a whole disk: one loop-backed disk per volume in flight at most, reused level by level.
        await using var disks = media == "disk" ? await BenchDisks.CreateAsync(levels.Max(), bytes) : null;
        try
        {
            var pools = new Dictionary<string, string>
            {
                ["node-a"] = disks?.PoolsConfig(bytes) ?? $$"""{ "tmpfs": [ { "name": "default", "capacity": "{{bytes * volumes}}" } ] }""",
            };
            await using var cluster = await LocalCluster.StartAsync(root, ["node-a"], Console.WriteLine, poolsConfig: pools,
                nbdFirstPort: BenchPorts.Lifecycle);
            var node = cluster.Nodes[0];
            foreach (var parallel in levels)
            {
                var samples = new SampleSet();
                var errors = new ConcurrentBag<string>();
                var retries = 0;
                using var gate = new SemaphoreSlim(parallel);
                var total = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, volumes).Select(async i =>
                {
                    await gate.WaitAsync();
                    try
                    {
                        var volume = new DriverVolume(cluster, $"life-{parallel}-{i}", media, bytes, fsType, media == "nbd" ? null : node.NodeId);
                        try { await LiveAsync(volume, samples); }
                        catch (Exception e)
                        {
                            errors.Add($"{volume.VolumeId}: {e.Message}");
                            await UnwindAsync(volume);
                        }
                        Interlocked.Add(ref retries, volume.Retries);
                    }
                    finally
                    {
                        gate.Release();
                    }
                }));
                total.Stop();
                var leftovers = await cluster.FindLeftoversAsync();
                var volumesLeft = (await cluster.Controller.Controller.ListVolumesAsync(new ListVolumesRequest())).Entries.Count;
                var journal = node.State.Journal;
                var journalLeft = Directory.Exists(journal) ? Directory.EnumerateFiles(journal, "*.json").Count() : 0;
                var level = new Level(parallel, samples, total.Elapsed, [.. errors], retries, leftovers, volumesLeft, journalLeft);
                results.Add(level);
                Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.0}s] {volumes} volumes, {parallel} in flight: {total.Elapsed.TotalSeconds:0.0} s, " +
                                  $"{errors.Count} errors, {retries} ABORTED retries, leftovers: {Describe(level)}");
                foreach (var error in errors.Take(5)) Console.WriteLine("  " + error);
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }

        var report = Report(results, volumes, media, bytes, fsType, clock.Elapsed);
        Console.WriteLine(report);
        if (output is not null) await File.WriteAllTextAsync(output, report);
        return results.All(r => r.Errors.Count == 0 && Clean(r)) ? 0 : 1;
    }

    private static async Task LiveAsync(DriverVolume volume, SampleSet samples)
    {
        var life = Stopwatch.StartNew();
        await samples.TimeAsync("CreateVolume", volume.CreateAsync);
        await samples.TimeAsync("ControllerPublishVolume", volume.ControllerPublishAsync);
        await samples.TimeAsync("NodeStageVolume", volume.StageAsync);
        await samples.TimeAsync("NodePublishVolume", volume.PublishAsync);
        await samples.TimeAsync("NodeUnpublishVolume", volume.UnpublishAsync);
        await samples.TimeAsync("NodeUnstageVolume", volume.UnstageAsync);
        await samples.TimeAsync("ControllerUnpublishVolume", volume.ControllerUnpublishAsync);
        await samples.TimeAsync("DeleteVolume", volume.DeleteAsync);
        samples["whole life"].Add(life.Elapsed);
    }

    /// <summary>After a failure, the way back as far as it goes, so one error does not pollute the next level.</summary>
    private static async Task UnwindAsync(DriverVolume volume)
    {
        if (volume.VolumeId.Length == 0) return;
        foreach (var step in new Func<Task>[] { volume.UnpublishAsync, volume.UnstageAsync, volume.ControllerUnpublishAsync, volume.DeleteAsync })
        {
            try { await step(); }
            catch (Exception e) { Console.Error.WriteLine($"  unwinding {volume.VolumeId}: {e.Message}"); }
        }
    }

    private static bool Clean(Level level) => level.Leftovers.IsEmpty && level.VolumesLeft == 0 && level.JournalEntriesLeft == 0;

    private static string Describe(Level level) => Clean(level) ? "none"
        : $"{level.Leftovers}, volumes [{level.VolumesLeft}], journal entries [{level.JournalEntriesLeft}]";

    private static int Int(CliArgs cli, string flag, int fallback) =>
        cli.Value(flag) is { } text ? int.TryParse(text, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : throw new UsageException($"{flag} needs a positive number") : fallback;

    private static string Report(IReadOnlyList<Level> levels, int volumes, string media, long bytes, string fsType, TimeSpan elapsed)
    {
        string Name(int parallel) => parallel == 1 ? "serial" : $"{parallel} in flight";
        var sb = new StringBuilder();
        sb.AppendLine("## Lifecycle throughput on one node");
        sb.AppendLine();
        sb.AppendLine($"`solar bench-lifecycle --volumes {volumes} --parallel {string.Join(',', levels.Select(l => l.Parallel))} --media {media} " +
                      $"--size-mib {bytes >> 20}` ({elapsed.TotalSeconds:0} s). Node plugin: `{BinaryLocator.Find().Node}`.");
        sb.AppendLine();
        sb.AppendLine($"{volumes} {media} volumes ({fsType}, {bytes >> 20} MiB, single-node-writer) each go through CreateVolume → ControllerPublish →");
        sb.AppendLine("NodeStage (attach, mkfs, mount) → NodePublish → NodeUnpublish → NodeUnstage → ControllerUnpublish → DeleteVolume, against one");
        sb.AppendLine("controller and one node plugin; at most *N* volumes are in flight at once. Latency is the gRPC call's wall time at the");
        sb.AppendLine("client; \"whole life\" is one volume's eight calls end to end. Errors are calls that failed (ABORTED is repeated, as the");
        sb.AppendLine("CO does, and counted apart); leftovers are mounts, loop devices, NBD helpers, volumes and node journal entries still");
        sb.AppendLine("there after the level.");
        sb.AppendLine();
        sb.AppendLine("| in flight | total | volumes/s | errors | ABORTED retries | leftovers |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var l in levels)
            sb.AppendLine($"| {Name(l.Parallel)} | {l.Total.TotalSeconds:0.0} s | {volumes / l.Total.TotalSeconds:0.0} | {l.Errors.Count} | {l.Retries} | {Describe(l)} |");
        sb.AppendLine();
        sb.AppendLine("Per-call latency, median / p99 (nearest rank over the volumes' calls):");
        sb.AppendLine();
        sb.AppendLine("| call | " + string.Join(" | ", levels.Select(l => Name(l.Parallel))) + " |");
        sb.AppendLine("|---|" + string.Concat(levels.Select(_ => "---|")));
        foreach (var op in Ops)
            sb.AppendLine($"| {op} | " + string.Join(" | ", levels.Select(l => $"{Samples.Ms(l.Samples[op].Median)} / {Samples.Ms(l.Samples[op].P99)}")) + " |");
        foreach (var l in levels.Where(l => l.Errors.Count > 0))
        {
            sb.AppendLine();
            sb.AppendLine($"Errors with {Name(l.Parallel)} (first 5 of {l.Errors.Count}):");
            foreach (var error in l.Errors.Take(5)) sb.AppendLine($"- {error}");
        }
        return sb.ToString();
    }
}
