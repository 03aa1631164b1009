using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Csi.V1;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Ids;
using SolarCsi.Local;
using SolarCsi.Node.Processes;

namespace SolarCsi.Cli;

/// <summary>
/// How long a snapshot holds the application, at 1 GiB and 16 GiB: a file volume (frozen on its own node) and an NBD
/// volume (frozen on the node that attaches it, cut on the storage host), each filled to 90 % with data and mounted,
/// with an application writing 4 KiB and fsync-ing in a loop. Reports the snapshot call's wall time, the longest
/// write the application saw during it (what a frozen filesystem costs it), the hold the plugins logged, and — for
/// scale — how long a full copy of the same image takes (what the freeze covered before the cut was a reflink).
/// The nodes' state is on a loop-mounted xfs (reflink=1), as docs/deploy.md asks.
/// </summary>
internal static partial class SnapshotBench
{
    private static readonly ProcessRunner Runner = new(NullLogger<ProcessRunner>.Instance);

    private sealed record Sample(string Media, long Bytes, double CallMs, double LongestWriteMs, double HeldMs, long Writes);

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = new CliArgs(args);
        var sizes = (cli.Value("--sizes-gib") ?? "1,16").Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture) << 30).ToArray();
        var media = (cli.Value("--media") ?? "file,nbd").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var repeats = int.Parse(cli.Value("--repeats") ?? "3", CultureInfo.InvariantCulture);
        var output = cli.Value("--out");
        if (media.Except(["file", "nbd"]).FirstOrDefault() is { } unknown) throw new UsageException($"unknown media '{unknown}'");

        var work = Directory.CreateTempSubdirectory("solar-bench-snapshot-").FullName;
        var image = Path.Combine(work, "state-xfs.img");
        var root = Path.Combine(work, "root");
        Directory.CreateDirectory(root);
        await using (var f = new FileStream(image, FileMode.CreateNew)) f.SetLength(sizes.Max() * 3 + (8L << 30));
        await Runner.RunAsync("mkfs.xfs", ["-q", "-m", "reflink=1", image], CancellationToken.None);
        // discard: deleted images give their space back to the file under the loop device.
        await Runner.RunAsync("mount", ["-o", "loop,discard", image, root], CancellationToken.None);
        var samples = new List<Sample>();
        var copies = new Dictionary<long, double>();
        var clock = Stopwatch.StartNew();
        Leftovers leftovers;
        try
        {
            // Room for a volume and its snapshot's reservation (a snapshot may come to need its full size as its source is rewritten).
            var capacity = new[] { "--file-pool-capacity", $"{sizes.Max() * 3 >> 30}Gi" };
            await using (var cluster = await LocalCluster.StartAsync(root, ["node-a", "node-b"], Console.WriteLine, nbdFirstPort: BenchPorts.Snapshot,
                             nodeArgs: new Dictionary<string, IReadOnlyList<string>> { ["node-a"] = capacity, ["node-b"] = capacity }))
            {
                foreach (var bytes in sizes)
                foreach (var m in media)
                {
                    var volume = new DriverVolume(cluster, $"snap-{m}-{bytes >> 30}g", m, bytes, "ext4", m == "nbd" ? null : "node-a");
                    await volume.CreateAsync();
                    var imagePath = ImageOf(root, volume.VolumeId);
                    Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0}s] {m} {bytes >> 30} GiB: filling the image");
                    Fill(imagePath, bytes * 9 / 10);
                    if (!copies.ContainsKey(bytes)) copies[bytes] = await TimeFullCopyAsync(imagePath);
                    await volume.ControllerPublishAsync();
                    await volume.StageAsync();
                    await volume.PublishAsync();
                    try
                    {
                        for (var i = 0; i < repeats; i++)
                        {
                            samples.Add(await MeasureAsync(cluster, root, volume, m, bytes, i));
                            var last = samples[^1];
                            Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0}s] {m} {bytes >> 30} GiB #{i + 1}: call {last.CallMs:0} ms, longest write " +
                                              $"{last.LongestWriteMs:0} ms, held {last.HeldMs:0} ms");
                        }
                    }
                    catch (Exception e)
                    {
                        Console.Error.WriteLine($"{m} {bytes >> 30} GiB failed: {e}");
                        throw;
                    }
                    finally
                    {
                        await volume.UnpublishAsync();
                        await volume.UnstageAsync();
                        await volume.ControllerUnpublishAsync();
                        await volume.DeleteAsync();
                    }
                }
                leftovers = await cluster.FindLeftoversAsync();
            }
        }
        finally
        {
            await Runner.RunAsync("umount", ["-l", root], CancellationToken.None);
            Directory.Delete(work, recursive: true);
        }
        var report = Report(samples, copies, repeats, leftovers, clock.Elapsed);
        Console.WriteLine(report);
        if (output is not null) await File.WriteAllTextAsync(output, report);
        return leftovers.IsEmpty ? 0 : 1;
    }

    private static async Task<Sample> MeasureAsync(LocalCluster cluster, string root, DriverVolume volume, string media, long bytes, int round)
    {
        using var stop = new CancellationTokenSource();
        var writes = new List<(double Start, double Ms)>();
        var clock = Stopwatch.StartNew();
        var writer = Task.Run(() => Write(Path.Combine(volume.Target, "app.dat"), clock, writes, stop.Token));
        double started, ended;
        Snapshot snapshot;
        try
        {
            await Task.Delay(1000);
            started = clock.Elapsed.TotalMilliseconds;
            snapshot = (await cluster.Controller.Controller.CreateSnapshotAsync(new CreateSnapshotRequest
            {
                Name = $"bench-{media}-{bytes >> 30}-{round}", SourceVolumeId = volume.VolumeId,
            })).Snapshot;
            ended = clock.Elapsed.TotalMilliseconds;
            await Task.Delay(500);
        }
        finally
        {
            // The application's file must be closed before anything unmounts the volume, whatever happened.
            await stop.CancelAsync();
            await writer;
        }
        await cluster.Controller.Controller.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = snapshot.SnapshotId });
        // A write that was under way at any moment of the call.
        var during = writes.Where(w => w.Start + w.Ms >= started && w.Start <= ended).ToArray();
        var held = media == "file"
            ? LastHeld(Path.Combine(root, "logs", "node-a.log"), HeldOnNode())
            : LastHeld(Path.Combine(root, "logs", "controller.log"), HeldByController());
        return new Sample(media, bytes, ended - started, during.Length == 0 ? 0 : during.Max(w => w.Ms), held, during.Length);
    }

    /// <summary>The application: 4 KiB at a random offset of a 64 MiB file, then fsync, in a loop.</summary>
    private static void Write(string path, Stopwatch clock, List<(double, double)> writes, CancellationToken stop)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        file.SetLength(64L << 20);
        var block = new byte[4096];
        Random.Shared.NextBytes(block);
        while (!stop.IsCancellationRequested)
        {
            var start = clock.Elapsed.TotalMilliseconds;
            file.Position = Random.Shared.NextInt64(0, 16384) * 4096;
            file.Write(block);
            file.Flush(flushToDisk: true);
            lock (writes) writes.Add((start, clock.Elapsed.TotalMilliseconds - start));
        }
    }

    private static string ImageOf(string root, string volumeId)
    {
        var id = StorageId.ParseVolume(volumeId);
        return Path.Combine(new SolarCsi.Node.NodeStateLayout(LocalCluster.StateDirOf(Path.Combine(root, id.Node))).PoolDir(id.Media, id.Pool), "volumes", id.Name + ".img");
    }

    /// <summary>Data in every block (so the image is allocated, as a full volume's is); stage then formats over it.</summary>
    private static void Fill(string image, long bytes)
    {
        var block = new byte[1 << 20];
        Random.Shared.NextBytes(block);
        using var file = new FileStream(image, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        for (long done = 0; done < bytes; done += block.Length)
        {
            BitConverter.TryWriteBytes(block, done);
            file.Write(block);
        }
        file.Flush(flushToDisk: true);
    }

    private static async Task<double> TimeFullCopyAsync(string image)
    {
        var copy = image + ".bench-copy";
        var clock = Stopwatch.StartNew();
        await Runner.RunAsync("cp", ["--reflink=never", "--sparse=always", "--", image, copy], CancellationToken.None, TimeSpan.FromMinutes(30));
        File.Delete(copy);
        return clock.Elapsed.TotalMilliseconds;
    }

    private static double LastHeld(string log, Regex pattern) =>
        File.ReadLines(log).Select(l => pattern.Match(l)).Where(m => m.Success).Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))
            .LastOrDefault(double.NaN);

    [GeneratedRegex(@"by reflink; writers on this node held (\d+) ms")]
    private static partial Regex HeldOnNode();

    [GeneratedRegex(@"writers for \S+ held (\d+) ms")]
    private static partial Regex HeldByController();

    private static string Report(List<Sample> samples, Dictionary<long, double> copies, int repeats, Leftovers leftovers, TimeSpan took)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Snapshot of a volume in use: how long the application is held");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"`solar bench-snapshot --sizes-gib {string.Join(',', samples.Select(s => s.Bytes >> 30).Distinct())} " +
                                                    $"--media {string.Join(',', samples.Select(s => s.Media).Distinct())} --repeats {repeats}` ({took.TotalSeconds:0} s). " +
                                                    $"Node plugin: `{BinaryLocator.Find().Node}`.");
        sb.AppendLine();
        sb.AppendLine("Each volume is filled to 90 % (every block of the image allocated), staged as ext4 and mounted — a file volume on its own");
        sb.AppendLine("node, an NBD volume on the node that does not hold it — and an application writes 4 KiB at random offsets with an fsync");
        sb.AppendLine("after each. Per snapshot: the CreateSnapshot call's wall time, the longest of the application's writes that overlapped");
        sb.AppendLine("it (a frozen filesystem stalls them), and the hold the plugins logged (the node for a file volume; the controller, from");
        sb.AppendLine("the first freeze to the last thaw, for NBD). The last column is a `cp --reflink=never` of the same image: what the");
        sb.AppendLine("application was held for before the cut became a reflink. The nodes' state is on a loop-mounted xfs (reflink=1).");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Worst of {repeats} snapshots per row.");
        sb.AppendLine();
        sb.AppendLine("| media | volume | image filled | snapshot call | longest app write during it | writers held (plugin log) | a full copy of the image |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var g in samples.GroupBy(s => (s.Media, s.Bytes)))
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {g.Key.Media} | {g.Key.Bytes >> 30} GiB | 90 % | {g.Max(s => s.CallMs):0} ms | {g.Max(s => s.LongestWriteMs):0} ms | " +
                $"{g.Max(s => s.HeldMs):0} ms | {copies[g.Key.Bytes] / 1000:0.0} s |");
        sb.AppendLine();
        var left = leftovers.IsEmpty ? "none" : leftovers.ToString();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Writes seen during the calls: {samples.Sum(s => s.Writes)}. Leftovers: {left}. Took {took.TotalSeconds:0} s.");
        return sb.ToString();
    }
}
