using System.Diagnostics;
using System.Text;
using Csi.V1;
using SolarCsi.Core.Storage;
using SolarCsi.Local;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Cli;

/// <summary>
/// The unit costs of what the node plugin does around the OS commands a script would run — the checks and the
/// journal that make its steps safe to repeat — measured in the same run, so the overhead figures can be explained
/// rather than guessed at.
/// </summary>
internal static class OverheadParts
{
    /// <summary>
    /// What the node's staging code runs for a blank file volume beyond the raw commands, per step, counted from the code
    /// (src/Node/Staging/VolumeStaging.cs, StagedFilesystem.cs, VolumePublishing.cs, LoopFileAttacher) as of this commit: loop device listings, blkid --probe, journal
    /// writes (temp file, fsync, rename, fsync of the directory; the final removal counts as one), mountinfo reads.
    /// </summary>
    public static readonly (string Step, int LosetupList, int Blkid, int JournalWrites, int MountinfoReads)[] FileCounts =
    [
        ("NodeStage", 2, 1, 3, 1),
        ("NodePublish", 1, 0, 1, 1),
        ("NodeUnpublish", 0, 0, 1, 2),
        ("NodeUnstage", 2, 0, 2, 3),
    ];

    public static async Task<SampleSet> MeasureAsync(LocalCluster cluster, IProcessRunner runner, RawSteps os, string dir, int repeats)
    {
        var samples = new SampleSet();
        Directory.CreateDirectory(dir);
        var image = Path.Combine(dir, "parts.img");
        await using (var f = File.Create(image)) f.SetLength(64L << 20);
        var loops = new LoopDevices(runner);
        var devices = new BlockDevices(runner);
        var mounter = new LinuxMounter(runner);
        var device = await os.AttachLoopAsync(image);
        try
        {
            await os.FormatAsync(device, "ext4");
            // A journal entry is a few hundred bytes of JSON; the state directory is on this filesystem too.
            var entry = Encoding.UTF8.GetBytes(new string('x', 600));
            var node = cluster.Nodes[0].Node;
            for (var i = 0; i < repeats; i++)
            {
                await samples.TimeAsync("loop listing", () => loops.ListAsync(CancellationToken.None));
                await samples.TimeAsync("blkid --probe", () => devices.ProbeAsync(device, CancellationToken.None));
                await samples.TimeAsync("journal write", () => AtomicFile.WriteAsync(Path.Combine(dir, "journal", "entry.json"), entry, CancellationToken.None));
                await samples.TimeAsync("mountinfo read", () => mounter.ListAsync(CancellationToken.None));
                await samples.TimeAsync("gRPC round trip", () => node.NodeGetCapabilitiesAsync(new NodeGetCapabilitiesRequest()).ResponseAsync);
            }
        }
        finally
        {
            await os.DetachLoopAsync(device);
        }
        return samples;
    }

    public static string Report(SampleSet parts, SampleSet cycles, int repeats)
    {
        var sb = new StringBuilder();
        sb.AppendLine("#### Where the difference goes (file media)");
        sb.AppendLine();
        sb.AppendLine($"Unit costs measured in the same run ({repeats} each, median): a loop device listing (sysfs and LOOP_GET_STATUS64, `LoopStatus`; it was a `losetup --list --json` process until session 3) {Samples.Ms(parts["loop listing"].Median)}, " +
                      $"a `blkid --probe` {Samples.Ms(parts["blkid --probe"].Median)}, a journal write (temp file, fsync, rename, fsync of the directory) " +
                      $"{Samples.Ms(parts["journal write"].Median)}, a mountinfo read {Samples.Ms(parts["mountinfo read"].Median)}, an empty gRPC call to the " +
                      $"node plugin {Samples.Ms(parts["gRPC round trip"].Median)}. What the driver runs beyond the raw commands, counted from the code, and");
        sb.AppendLine("the driver time those predict (raw median + the extras' unit costs):");
        sb.AppendLine();
        sb.AppendLine("| step | extra loop listings | extra `blkid` | journal writes | mountinfo reads | raw + extras (predicted) | driver (measured) |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var (step, losetup, blkid, journal, mountinfo) in FileCounts)
        {
            var predicted = cycles[$"file/raw/{step}"].Median + losetup * parts["loop listing"].Median + blkid * parts["blkid --probe"].Median +
                            journal * parts["journal write"].Median + mountinfo * parts["mountinfo read"].Median + parts["gRPC round trip"].Median;
            sb.AppendLine($"| {step} | {losetup} | {blkid} | {journal} | {mountinfo} | {Samples.Ms(predicted)} | {Samples.Ms(cycles[$"file/driver/{step}"].Median)} |");
        }
        return sb.ToString();
    }
}
