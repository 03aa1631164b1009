using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Local;
using SolarCsi.Node.Processes;

namespace SolarCsi.Cli;

/// <summary>
/// What the driver adds to the OS work of a volume's node life: NodeStage, NodePublish, NodeUnpublish and
/// NodeUnstage through the node plugin, against the same commands run directly (RawSteps), per media, in the same
/// run, interleaved cycle by cycle with the order alternating. Every cycle formats a blank volume on both sides.
/// </summary>
internal static class OverheadBench
{
    private static readonly string[] Steps = ["NodeStage", "NodePublish", "NodeUnpublish", "NodeUnstage"];
    private const long TmpfsBytes = 64L << 20;

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = new CliArgs(args);
        var iterations = Int(cli, "--iterations", 100);
        var warmup = Int(cli, "--warmup", 2);
        var media = (cli.Value("--media") ?? "file,nbd,tmpfs").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var bytes = (long)Int(cli, "--size-mib", 1024) << 20;
        var fsType = cli.Value("--fs") ?? "ext4";
        var output = cli.Value("--out");
        if (media.Except(["file", "nbd", "tmpfs"]).FirstOrDefault() is { } unknown) throw new UsageException($"unknown media '{unknown}'");

        var root = Directory.CreateTempSubdirectory("solar-bench-overhead-").FullName;
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var os = new RawSteps(runner);
        // The same cipher policy the node gives its helpers, so that raw and driver cycles encrypt alike.
        var launcher = new DaemonLauncher(runner, await SolarCsi.Node.Nbd.TlsCipherPolicy.EnvironmentAsync(root, CancellationToken.None));
        var samples = new SampleSet();
        var retries = 0;
        SampleSet? parts = null;
        Leftovers leftovers;
        var clock = Stopwatch.StartNew();
        try
        {
            var pools = new Dictionary<string, string> { ["node-a"] = """{ "tmpfs": [ { "name": "default", "capacity": "1Gi" } ] }""" };
            await using var cluster = await LocalCluster.StartAsync(root, ["node-a", "node-b"], Console.WriteLine, poolsConfig: pools,
                nbdFirstPort: BenchPorts.Overhead);
            for (var i = -warmup; i < iterations; i++)
            {
                foreach (var m in media)
                {
                    var name = i < 0 ? $"{m}-w{-i}" : $"{m}-{i}";
                    var volume = new DriverVolume(cluster, "ovh-" + name, m, m == "tmpfs" ? TmpfsBytes : bytes, m == "tmpfs" ? "tmpfs" : fsType,
                        m == "nbd" ? null : "node-a");
                    var rawDir = Path.Combine(root, "raw", name);
                    IStageCycle raw = m switch
                    {
                        "file" => new RawFileCycle(os, rawDir, bytes, fsType),
                        "tmpfs" => new RawTmpfsCycle(os, rawDir, "solar-bench-" + name, TmpfsBytes),
                        _ => new RawNbdCycle(os, launcher, new DriverVolume(cluster, "ovh-raw-" + name, "nbd", bytes, fsType, null), rawDir, fsType),
                    };
                    // Interleaved, and the order alternates, so drift and warm caches favour neither side.
                    (string Side, IStageCycle Cycle)[] sides = i % 2 == 0 ? [("driver", new DriverCycle(volume)), ("raw", raw)] : [("raw", raw), ("driver", new DriverCycle(volume))];
                    foreach (var (side, cycle) in sides) await RunCycleAsync(cycle, i < 0 ? null : samples, $"{m}/{side}");
                    retries += volume.Retries;
                }
                if (i >= 0 && (i + 1) % 5 == 0) Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.0}s] {i + 1}/{iterations} cycles per media and side");
            }
            if (media.Contains("file")) parts = await OverheadParts.MeasureAsync(cluster, runner, os, Path.Combine(root, "raw", "parts"), Math.Max(iterations, 5));
            leftovers = await cluster.FindLeftoversAsync();
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }

        var report = Report(samples, media, iterations, warmup, bytes, fsType, retries, leftovers, clock.Elapsed);
        if (parts is not null) report += Environment.NewLine + OverheadParts.Report(parts, samples, Math.Max(iterations, 5));
        Console.WriteLine(report);
        if (output is not null) await File.WriteAllTextAsync(output, report);
        return leftovers.IsEmpty ? 0 : 1;
    }

    private static async Task RunCycleAsync(IStageCycle cycle, SampleSet? samples, string prefix)
    {
        var ok = false;
        try
        {
            await cycle.PrepareAsync();
            var total = Stopwatch.StartNew();
            await TimeAsync(samples, prefix + "/NodeStage", cycle.StageAsync);
            await TimeAsync(samples, prefix + "/NodePublish", cycle.PublishAsync);
            await TimeAsync(samples, prefix + "/NodeUnpublish", cycle.UnpublishAsync);
            await TimeAsync(samples, prefix + "/NodeUnstage", cycle.UnstageAsync);
            samples?[prefix + "/all four"].Add(total.Elapsed);
            ok = true;
        }
        finally
        {
            try { await cycle.CleanUpAsync(); }
            catch (Exception e) when (!ok) { Console.Error.WriteLine($"clean-up after the failure above also failed: {e.Message}"); }
        }
    }

    private static Task TimeAsync(SampleSet? samples, string name, Func<Task> step) => samples is null ? step() : samples.TimeAsync(name, step);

    private static int Int(CliArgs cli, string flag, int fallback) =>
        cli.Value(flag) is { } text ? int.TryParse(text, CultureInfo.InvariantCulture, out var value) && value >= 0 ? value : throw new UsageException($"{flag} needs a number") : fallback;

    private static string Report(SampleSet samples, IReadOnlyList<string> media, int iterations, int warmup, long bytes, string fsType, int retries,
        Leftovers leftovers, TimeSpan elapsed)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Driver overhead: node calls through the driver vs the same OS steps run directly");
        sb.AppendLine();
        sb.AppendLine($"`solar bench-overhead --iterations {iterations} --warmup {warmup} --media {string.Join(',', media)} --size-mib {bytes >> 20} --fs {fsType}` " +
                      $"({elapsed.TotalSeconds:0} s). Node plugin: `{BinaryLocator.Find().Node}`.");
        sb.AppendLine();
        sb.AppendLine($"Per media, {iterations} cycles on each side after {warmup} unmeasured ones, interleaved (driver then raw, raw then driver, alternating).");
        sb.AppendLine("Every cycle starts from a blank volume (so every NodeStage formats). **Driver**: wall time of the gRPC call as the CO sees it");
        sb.AppendLine("(unix socket, kubelet-like paths); file and tmpfs volumes on node-a, NBD volumes staged on the node that does not hold the");
        sb.AppendLine("image. **Raw**: the same commands with the same arguments (built by the driver's own argument builders), run from the");
        sb.AppendLine("bench process through the same process runner: file — `losetup --find --show --direct-io=on`, `mkfs.ext4 -q -F -E");
        sb.AppendLine("lazy_itable_init=1,lazy_journal_init=1,nodiscard`, `mount -t ext4`, `mount -o bind`, `umount`, `losetup --detach`; NBD — the");
        sb.AppendLine("node's nbdfuse command (`setsid --fork` … `nbdfuse --pidfile … --socket-activation nbdkit nbd … tls=require tls-psk=…`,");
        sb.AppendLine("ready at its pid file) against an export the driver made, then the same loop/mkfs/mount, and back with `fusermount3 -u` and");
        sb.AppendLine("waiting for nbdfuse to exit; tmpfs — the bind mounts over a tmpfs made beforehand, as CreateVolume makes it.");
        sb.AppendLine($"p99 is by nearest rank: the {(int)Math.Ceiling(0.99 * iterations)}th of {iterations} cycles from the fastest" +
                      $"{(iterations < 100 ? " (the slowest)" : "")}. Goal: driver / raw ≤ 1.10.");
        sb.AppendLine();
        foreach (var m in media)
        {
            sb.AppendLine(m switch
            {
                "file" => $"### file ({fsType}, {bytes >> 20} MiB image, loop device)",
                "nbd" => $"### nbd ({fsType}, {bytes >> 20} MiB, nbdkit TLS-PSK on 127.0.0.1 → nbdfuse → loop device)",
                _ => $"### tmpfs ({TmpfsBytes >> 20} MiB)",
            });
            sb.AppendLine();
            sb.AppendLine("| step | driver median | raw median | ratio | driver p99 | raw p99 | ratio p99 | ≤ 1.10 (median) |");
            sb.AppendLine("|---|---|---|---|---|---|---|---|");
            foreach (var step in Steps.Append("all four"))
            {
                var d = samples[$"{m}/driver/{step}"];
                var r = samples[$"{m}/raw/{step}"];
                var met = d.Median / r.Median <= 1.10 ? "yes" : "no";
                sb.AppendLine($"| {step} | {Samples.Ms(d.Median)} | {Samples.Ms(r.Median)} | {Samples.Ratio(d.Median, r.Median)} | {Samples.Ms(d.P99)} | " +
                              $"{Samples.Ms(r.P99)} | {Samples.Ratio(d.P99, r.P99)} | {met} |");
            }
            sb.AppendLine();
        }
        sb.AppendLine($"Calls repeated after ABORTED: {retries}. Left behind after the run (mounts, loop devices, NBD helpers under the run's directory): " +
                      (leftovers.IsEmpty ? "none." : leftovers + "."));
        return sb.ToString();
    }
}
