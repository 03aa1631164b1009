using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Csi.V1;
using SolarCsi.Local;
using SolarCsi.Node;
using SolarCsi.Node.Processes;
using SolarCsi.Node.Staging;

namespace SolarCsi.Cli;

/// <summary>
/// Hundreds of NBD volumes on one storage host, all attached to one consumer node: volumes are brought up level by
/// level (create, ControllerPublish, stage, publish) with N in flight, the memory of what serves and attaches them is
/// read at each level, then all are torn down with N in flight. A run is clean when no call failed and nothing is
/// left (processes, mounts, loop devices, volumes, journal entries); the bench repeats the whole run in a fresh
/// cluster, because "0 errors" means three runs in a row.
/// </summary>
internal static class NbdScaleBench
{
    private static readonly string[] UpSteps = ["CreateVolume", "ControllerPublishVolume", "NodeStageVolume", "NodePublishVolume"];
    private static readonly string[] DownSteps = ["NodeUnpublishVolume", "NodeUnstageVolume", "ControllerUnpublishVolume", "DeleteVolume"];
    private const string Storage = "storage";
    private const string Consumer = "consumer";

    private sealed record Memory(int Exports, double ExportsPssMiB, int Attachments, double AttachmentsPssMiB, double StoragePluginPssMiB,
        double ConsumerPluginPssMiB, double ControllerPssMiB);

    private sealed record Level(int Volumes, int Added, TimeSpan Took, SampleSet Samples, IReadOnlyList<string> Errors, Memory Memory);

    private sealed record Run(IReadOnlyList<Level> Levels, TimeSpan DownTook, SampleSet Down, IReadOnlyList<string> DownErrors, string Leftovers);

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = new CliArgs(args);
        var levels = (cli.Value("--levels") ?? "16,64,128,256").Split(',').Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToArray();
        var parallel = int.Parse(cli.Value("--parallel") ?? "16", CultureInfo.InvariantCulture);
        var runs = int.Parse(cli.Value("--runs") ?? "3", CultureInfo.InvariantCulture);
        var bytes = long.Parse(cli.Value("--size-mib") ?? "64", CultureInfo.InvariantCulture) << 20;
        var output = cli.Value("--out");
        if (levels.Zip(levels.Skip(1)).Any(p => p.Second <= p.First)) throw new UsageException("--levels must grow");

        var clock = Stopwatch.StartNew();
        var results = new List<Run>();
        for (var r = 1; r <= runs; r++)
        {
            results.Add(await OneRunAsync(levels, parallel, bytes, r, clock));
            var last = results[^1];
            Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0}s] run {r}: {last.Levels.Sum(l => l.Errors.Count)} errors up, {last.DownErrors.Count} down, leftovers: {last.Leftovers}");
        }
        var report = Report(results, levels, parallel, bytes, clock.Elapsed);
        Console.WriteLine(report);
        if (output is not null) await File.WriteAllTextAsync(output, report);
        return results.All(Clean) ? 0 : 1;
    }

    private static bool Clean(Run run) => run.Levels.All(l => l.Errors.Count == 0) && run.DownErrors.Count == 0 && run.Leftovers == "none";

    private static async Task<Run> OneRunAsync(int[] levels, int parallel, long bytes, int run, Stopwatch clock)
    {
        var root = Directory.CreateTempSubdirectory("solar-bench-nbd-scale-").FullName;
        var max = levels.Max();
        try
        {
            // Every volume on one storage host (the consumer's pool has no room for one), with a port for each export,
            // and a consumer that may attach them all.
            var nodeArgs = new Dictionary<string, IReadOnlyList<string>>
            {
                [Storage] = ["--file-pool-capacity", $"{(bytes * max * 2) >> 20}Mi", "--nbd-port-range", $"{BenchPorts.NbdScale}-{BenchPorts.NbdScale + max * 2}"],
                [Consumer] = ["--file-pool-capacity", "1Mi", "--max-volumes", (max * 2).ToString(CultureInfo.InvariantCulture)],
            };
            await using var cluster = await LocalCluster.StartAsync(root, [Storage, Consumer], _ => { }, nodeArgs: nodeArgs,
                nbdFirstPort: BenchPorts.NbdScale + max * 2 + 1);
            var volumes = new List<DriverVolume>();
            var results = new List<Level>();
            foreach (var target in levels)
            {
                var added = Enumerable.Range(volumes.Count, target - volumes.Count)
                    .Select(i => new DriverVolume(cluster, $"scale-{run}-{i}", "nbd", bytes, "ext4", null)).ToArray();
                var samples = new SampleSet();
                var errors = new ConcurrentBag<string>();
                var took = await InParallelAsync(added, parallel, async v =>
                {
                    await samples.TimeAsync("CreateVolume", v.CreateAsync);
                    await samples.TimeAsync("ControllerPublishVolume", v.ControllerPublishAsync);
                    await samples.TimeAsync("NodeStageVolume", v.StageAsync);
                    await samples.TimeAsync("NodePublishVolume", v.PublishAsync);
                }, errors);
                volumes.AddRange(added);
                // Idle: what an attached volume costs while nothing happens.
                await Task.Delay(2000);
                var memory = Measure(cluster);
                results.Add(new Level(target, added.Length, took, samples, [.. errors], memory));
                Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0}s] run {run}: {target} volumes attached ({added.Length / took.TotalSeconds:0.0}/s), " +
                                  $"{errors.Count} errors, p95 ControllerPublish {Samples.Ms(samples["ControllerPublishVolume"].Percentile(95))}, " +
                                  $"{memory.Exports} exports {memory.ExportsPssMiB / Math.Max(1, memory.Exports):0.00} MiB PSS each");
                foreach (var error in errors.Take(5)) Console.WriteLine("  " + error);
            }

            var down = new SampleSet();
            var downErrors = new ConcurrentBag<string>();
            var downTook = await InParallelAsync(volumes.Where(v => v.VolumeId.Length > 0).ToArray(), parallel, async v =>
            {
                await down.TimeAsync("NodeUnpublishVolume", v.UnpublishAsync);
                await down.TimeAsync("NodeUnstageVolume", v.UnstageAsync);
                await down.TimeAsync("ControllerUnpublishVolume", v.ControllerUnpublishAsync);
                await down.TimeAsync("DeleteVolume", v.DeleteAsync);
            }, downErrors);
            var leftovers = await cluster.FindLeftoversAsync();
            var volumesLeft = (await cluster.Controller.Controller.ListVolumesAsync(new ListVolumesRequest())).Entries.Count;
            var journal = cluster.Nodes[1].State.Journal;
            var journalLeft = Directory.Exists(journal) ? Directory.EnumerateFiles(journal, "*.json").Count() : 0;
            var left = leftovers.IsEmpty && volumesLeft == 0 && journalLeft == 0 ? "none" : $"{leftovers}, volumes [{volumesLeft}], journal entries [{journalLeft}]";
            return new Run(results, downTook, down, [.. downErrors], left);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<TimeSpan> InParallelAsync(IReadOnlyList<DriverVolume> volumes, int parallel, Func<DriverVolume, Task> work, ConcurrentBag<string> errors)
    {
        using var gate = new SemaphoreSlim(parallel);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(volumes.Select(async v =>
        {
            await gate.WaitAsync();
            try { await work(v); }
            catch (Exception e) { errors.Add($"{(v.VolumeId.Length > 0 ? v.VolumeId : "(not created)")}: {e.Message}"); }
            finally { gate.Release(); }
        }));
        return clock.Elapsed;
    }

    /// <summary>Proportional set sizes: shared pages (the binaries, libraries) are divided among the processes sharing them.</summary>
    private static Memory Measure(LocalCluster cluster)
    {
        // The storage host runs one nbdkit per export; the consumer one nbdfuse per attachment, with the nbdkit nbd-plugin
        // client nbdfuse starts as its child (the TLS-PSK side). Told apart by the node directory in their arguments.
        var helpers = cluster.HelperProcesses().Select(pid => (Pid: pid, Argv: Pid.CommandLine(pid) ?? [])).ToArray();
        bool On(IReadOnlyList<string> argv, NodePlugin node) => argv.Any(a => a.Contains(node.Directory + "/", StringComparison.Ordinal));
        var storage = cluster.Nodes.Single(n => n.NodeId == Storage);
        var consumer = cluster.Nodes.Single(n => n.NodeId == Consumer);
        var exports = helpers.Where(h => On(h.Argv, storage) && Path.GetFileName(h.Argv[0]) == "nbdkit").Select(h => h.Pid).ToArray();
        var attaching = helpers.Where(h => On(h.Argv, consumer)).ToArray();
        var attachments = attaching.Count(h => Path.GetFileName(h.Argv[0]) == "nbdfuse");
        return new Memory(exports.Length, exports.Sum(PssMiB), attachments, attaching.Sum(h => PssMiB(h.Pid)),
            PssMiB(cluster.ProcessIdOf(Storage)), PssMiB(cluster.ProcessIdOf(Consumer)), PssMiB(cluster.ProcessIdOf("controller")));
    }

    private static double PssMiB(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/smaps_rollup").FirstOrDefault(l => l.StartsWith("Pss:", StringComparison.Ordinal));
            return line is null ? 0 : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        }
        catch (IOException) { return 0; } // gone meanwhile
    }

    private static string Report(IReadOnlyList<Run> runs, int[] levels, int parallel, long bytes, TimeSpan took)
    {
        static string Mib(double v) => v.ToString("0.00", CultureInfo.InvariantCulture) + " MiB";
        var sb = new StringBuilder();
        sb.AppendLine("## NBD at scale: one storage host, one consumer, hundreds of volumes");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"`solar bench-nbd-scale --levels {string.Join(',', levels)} --parallel {parallel} --size-mib {bytes >> 20} " +
                                                    $"--runs {runs.Count}` ({took.TotalSeconds:0} s). Node plugin: `{BinaryLocator.Find().Node}`.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Volumes ({bytes >> 20} MiB, ext4, single-node-writer) all live on node `{Storage}` and are attached on node `{Consumer}`:");
        sb.AppendLine("created, ControllerPublished (the storage host starts the volume's export), staged (attached, formatted, mounted) and");
        sb.AppendLine(CultureInfo.InvariantCulture, $"published with {parallel} in flight, level by level; after each level, two idle seconds, then the PSS of the exports");
        sb.AppendLine("(nbdkit) and attachments (nbdfuse and the nbdkit TLS client it runs) — PSS divides shared pages among the processes that share them, so the sum is the");
        sb.AppendLine(CultureInfo.InvariantCulture, $"real cost — and of the plugins. Then everything is torn down with {parallel} in flight. Each run is a fresh cluster.");
        sb.AppendLine();
        sb.AppendLine("| run | errors (up / down) | leftovers | up: volumes/s at each level | down: volumes/s |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var (run, i) in runs.Select((r, i) => (r, i + 1)))
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {i} | {run.Levels.Sum(l => l.Errors.Count)} / {run.DownErrors.Count} | {run.Leftovers} | " +
                $"{string.Join(", ", run.Levels.Select(l => $"{l.Volumes}: {l.Added / l.Took.TotalSeconds:0.0}"))} | " +
                $"{run.Levels[^1].Volumes / run.DownTook.TotalSeconds:0.0} |");
        sb.AppendLine();
        var last = runs[^1];
        sb.AppendLine("Latency per step, last run (p50 / p95 of the volumes added at that level):");
        sb.AppendLine();
        sb.AppendLine("| volumes attached | " + string.Join(" | ", UpSteps) + " |");
        sb.AppendLine("|---|" + string.Concat(UpSteps.Select(_ => "---|")));
        foreach (var level in last.Levels)
        {
            var cells = string.Join(" | ", UpSteps.Select(s => $"{Samples.Ms(level.Samples[s].Median)} / {Samples.Ms(level.Samples[s].Percentile(95))}"));
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {level.Volumes} | {cells} |");
        }
        var downCells = string.Join(" | ", DownSteps.Select(s => $"{s}: {Samples.Ms(last.Down[s].Median)} / {Samples.Ms(last.Down[s].Percentile(95))}"));
        sb.AppendLine(CultureInfo.InvariantCulture, $"| teardown of {last.Levels[^1].Volumes} | {downCells} |");
        sb.AppendLine();
        sb.AppendLine("Memory (PSS), last run:");
        sb.AppendLine();
        sb.AppendLine("| volumes attached | exports (nbdkit) | per export | attachments (nbdfuse + its nbdkit client) | per attachment | storage plugin | consumer plugin | controller |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var level in last.Levels)
        {
            var m = level.Memory;
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {level.Volumes} | {m.Exports}: {Mib(m.ExportsPssMiB)} | {Mib(m.ExportsPssMiB / Math.Max(1, m.Exports))} | " +
                $"{m.Attachments}: {Mib(m.AttachmentsPssMiB)} | {Mib(m.AttachmentsPssMiB / Math.Max(1, m.Attachments))} | {Mib(m.StoragePluginPssMiB)} | " +
                $"{Mib(m.ConsumerPluginPssMiB)} | {Mib(m.ControllerPssMiB)} |");
        }
        var errors = runs.SelectMany(r => r.Levels.SelectMany(l => l.Errors).Concat(r.DownErrors)).Take(10).ToArray();
        if (errors.Length > 0)
        {
            sb.AppendLine();
            sb.AppendLine("First errors:");
            sb.AppendLine();
            foreach (var e in errors) sb.AppendLine("- " + e.ReplaceLineEndings(" "));
        }
        return sb.ToString();
    }
}
