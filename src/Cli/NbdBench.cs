using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Csi.V1;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Node.Devices;
using SolarCsi.Local;
using SolarCsi.Node.Processes;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.Cli;

/// <summary>
/// fio through a raw-block NBD volume attached by the driver on a remote node, against a loop device over an
/// image on the same disk, in the same run, interleaved; writes a markdown report.
/// </summary>
public static class NbdBench
{
    private sealed record Job(string Name, string Rw, string BlockSize, int Depth);

    private static readonly Job[] Jobs =
    [
        new("seq write 1M qd8", "write", "1M", 8), new("seq read 1M qd8", "read", "1M", 8),
        new("rand write 4k qd32", "randwrite", "4k", 32), new("rand read 4k qd32", "randread", "4k", 32),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        var output = args.SkipWhile(a => a != "--out").Skip(1).FirstOrDefault() ?? "bench/RESULTS-nbd.md";
        var seconds = int.Parse(args.SkipWhile(a => a != "--seconds").Skip(1).FirstOrDefault() ?? "15", CultureInfo.InvariantCulture);
        var repeats = int.Parse(args.SkipWhile(a => a != "--repeats").Skip(1).FirstOrDefault() ?? "1", CultureInfo.InvariantCulture);
        var root = Directory.CreateTempSubdirectory("solar-bench-").FullName;
        // Outside the cluster's directory, whose teardown detaches every loop device over its files.
        var localDir = Directory.CreateTempSubdirectory("solar-bench-local-").FullName;
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var loops = new LoopDevices(runner);
        string? localLoop = null;
        var results = Jobs.ToDictionary(j => j, _ => (Nbd: new List<Figures>(), Local: new List<Figures>()));
        try
        {
            await using var cluster = await LocalCluster.StartAsync(root, ["node-a", "node-b"], Console.WriteLine, nbdFirstPort: BenchPorts.Nbd);
            var capability = new VolumeCapability
            {
                Block = new VolumeCapability.Types.BlockVolume(), AccessMode = new VolumeCapability.Types.AccessMode { Mode = AccessMode.SingleNodeWriter },
            };
            var volume = (await cluster.Controller.Controller.CreateVolumeAsync(new CreateVolumeRequest
            {
                Name = "bench-nbd", CapacityRange = new CapacityRange { RequiredBytes = 1L << 30 }, VolumeCapabilities = { capability },
                Parameters = { ["media"] = "nbd" },
            })).Volume;
            var host = volume.VolumeId.Split('~')[2];
            var consumer = cluster.Nodes.First(n => n.NodeId != host);
            var published = await cluster.Controller.Controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = consumer.NodeId, VolumeCapability = capability,
            });
            var staging = Path.Combine(cluster.KubeletDir, "bench", "staging");
            var target = Path.Combine(cluster.KubeletDir, "bench", "device");
            Directory.CreateDirectory(staging);
            await consumer.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, VolumeCapability = capability, PublishContext = { published.PublishContext },
            });
            await consumer.Node.NodePublishVolumeAsync(new NodePublishVolumeRequest
            {
                VolumeId = volume.VolumeId, StagingTargetPath = staging, TargetPath = target, VolumeCapability = capability,
                PublishContext = { published.PublishContext },
            });
            Console.WriteLine($"NBD volume {volume.VolumeId} (image on {host}) attached on {consumer.NodeId} at {target}");

            var image = Path.Combine(localDir, "local.img");
            await using (var f = File.Create(image)) f.SetLength(1L << 30);
            localLoop = await loops.AttachAsync(image, readOnly: false, CancellationToken.None);
            Console.WriteLine($"local loop device {localLoop} over {image}");

            for (var repeat = 0; repeat < repeats; repeat++)
            {
                foreach (var job in Jobs)
                {
                    // Interleaved: each workload runs on both targets back to back, in alternating order across
                    // repeats, so drift hits both alike.
                    var nbdFirst = repeat % 2 == 0;
                    var first = await FioAsync(runner, nbdFirst ? target : localLoop, job, seconds);
                    var second = await FioAsync(runner, nbdFirst ? localLoop : target, job, seconds);
                    var (nbd, local) = nbdFirst ? (first, second) : (second, first);
                    Console.WriteLine($"{job.Name}: nbd {nbd} | local {local} | ratio {Ratio(nbd, local, job)}");
                    results[job].Nbd.Add(nbd);
                    results[job].Local.Add(local);
                }
            }

            await consumer.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = target });
            await consumer.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId, StagingTargetPath = staging });
            await cluster.Controller.Controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volume.VolumeId, NodeId = consumer.NodeId });
            await cluster.Controller.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        }
        finally
        {
            if (localLoop is not null) await loops.DetachAsync(localLoop, CancellationToken.None);
            Directory.Delete(root, recursive: true);
            Directory.Delete(localDir, recursive: true);
        }
        await File.WriteAllTextAsync(output, Report(results, seconds, repeats));
        Console.WriteLine($"wrote {output}");
        return 0;
    }

    private sealed record Figures(double MiBps, double Iops)
    {
        public override string ToString() => $"{MiBps:0} MiB/s, {Iops:0} IOPS";
    }

    private static string Ratio(Figures nbd, Figures local, Job job) =>
        (job.BlockSize == "4k" ? nbd.Iops / local.Iops : nbd.MiBps / local.MiBps).ToString("0.00", CultureInfo.InvariantCulture);

    private static async Task<Figures> FioAsync(IProcessRunner runner, string device, Job job, int seconds)
    {
        var result = await runner.RunAsync("fio", [
            "--name=bench", "--filename=" + device, "--rw=" + job.Rw, "--bs=" + job.BlockSize, "--iodepth=" + job.Depth,
            "--ioengine=libaio", "--direct=1", "--size=512M", "--time_based", "--runtime=" + seconds, "--ramp_time=2",
            "--output-format=json",
        ], CancellationToken.None, TimeSpan.FromSeconds(seconds * 3 + 60));
        using var doc = JsonDocument.Parse(result.StandardOutput[result.StandardOutput.IndexOf('{')..]);
        var side = doc.RootElement.GetProperty("jobs")[0].GetProperty(job.Rw.Contains("write") ? "write" : "read");
        return new Figures(side.GetProperty("bw").GetDouble() / 1024, side.GetProperty("iops").GetDouble());
    }

    /// <summary>The median run of a workload (by the figure its ratio uses), with the range when it ran more than once.</summary>
    private static (Figures Median, string Text) Summarise(List<Figures> runs, Job job)
    {
        double Key(Figures f) => job.BlockSize == "4k" ? f.Iops : f.MiBps;
        var sorted = runs.OrderBy(Key).ToArray();
        var median = sorted[(sorted.Length - 1) / 2];
        var range = sorted.Length > 1
            ? job.BlockSize == "4k" ? $" [{sorted[0].Iops:0}–{sorted[^1].Iops:0} IOPS]" : $" [{sorted[0].MiBps:0}–{sorted[^1].MiBps:0} MiB/s]"
            : "";
        return (median, median + range);
    }

    private static string Report(Dictionary<Job, (List<Figures> Nbd, List<Figures> Local)> results, int seconds, int repeats)
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
        var sb = new StringBuilder();
        sb.AppendLine("# NBD data path vs local loop device");
        sb.AppendLine();
        sb.AppendLine($"Run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} cores ({cpu}), {Environment.OSVersion}.");
        sb.AppendLine($"Command: `bench/nbd-fio.sh` (fio libaio, direct I/O, {seconds} s per job after 2 s ramp, 512 MiB span, {repeats} run(s) of each");
        sb.AppendLine("workload on each target; with several, the median run and [min–max]).");
        sb.AppendLine("NBD: a raw-block `nbd` volume created, published and staged through the driver on the node that does not hold");
        sb.AppendLine("the image (nbdkit with TLS-PSK on 127.0.0.1 → attach path chosen by the node plugin). Local: a direct-io loop device");
        sb.AppendLine("over an image on the same filesystem. Each workload runs on both targets back to back.");
        sb.AppendLine();
        sb.AppendLine("| workload | NBD | local loop | ratio (IOPS for 4k, MiB/s for 1M) |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var (job, (nbdRuns, localRuns)) in results)
        {
            var (nbd, nbdText) = Summarise(nbdRuns, job);
            var (local, localText) = Summarise(localRuns, job);
            sb.AppendLine($"| {job.Name} | {nbdText} | {localText} | {Ratio(nbd, local, job)} |");
        }
        sb.AppendLine();
        sb.AppendLine("Goals (issue #7): 4k random read ≥ 0.5 × local, sequential ≥ 0.9 × local.");
        sb.AppendLine();
        sb.AppendLine("Both images start sparse, but the sequential write runs first on each target and loops over the whole span for");
        sb.AppendLine("its ramp and run time, so every read finds written blocks on both. See bench/README.md for what limits the NBD path.");
        return sb.ToString();
    }
}
