using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Inspection;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Cli;

/// <summary>
/// `solar node-state` and `solar cleanup`: run on the node (e.g. kubectl exec into the node plugin's pod), they read
/// the plugin's state directory and the kernel directly, so they work while the plugin is stuck or down.
/// </summary>
internal static class NodeStateCommand
{
    private static NodeInspection Inspection()
    {
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var loops = new LoopDevices(runner);
        var mounter = new LinuxMounter(runner);
        // The launcher starts nothing here: inspection only asks the attach paths what is attached.
        return new NodeInspection(mounter, loops, SolarCsi.Node.Attach.AttacherSet.ForThisHost(runner, loops, mounter, new DaemonLauncher(runner), NullLoggerFactory.Instance));
    }

    public static async Task<int> ShowAsync(CliArgs args)
    {
        var report = await Inspection().InspectAsync(StateDir(args), CancellationToken.None);
        if (args.Json)
        {
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(report, CliJson.Default.NodeReport));
            return 0;
        }
        Table.Print(["VOLUME", "JOURNAL", "DEVICE", "ATTACHED", "STAGING MOUNTED", "PUBLISHED (MOUNTED/RECORDED)"],
            report.Volumes.Select(v => new[]
            {
                v.VolumeId, v.Phase, v.Device ?? "-", YesNo(v.DeviceAttached), v.Block ? "(block)" : YesNo(v.StagingMounted),
                $"{v.TargetsMounted.Count}/{v.Targets.Count}",
            }));
        Console.WriteLine();
        PrintFindings(report.Findings);
        return 0;
    }

    public static async Task<int> CleanUpAsync(CliArgs args)
    {
        var inspection = Inspection();
        var stateDir = StateDir(args);
        var report = await inspection.InspectAsync(stateDir, CancellationToken.None);
        var actionable = report.Findings.Where(f => f.Actions.Count > 0).ToArray();
        if (!args.Has("--apply"))
        {
            if (args.Json)
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(actionable, CliJson.Default.FindingArray));
                return 0;
            }
            PrintFindings(actionable);
            if (actionable.Length > 0) Console.WriteLine($"dry run: nothing changed. Run again with --apply to carry out the {actionable.Sum(f => f.Actions.Count)} step(s) above.");
            return 0;
        }
        var done = await inspection.CleanUpAsync(stateDir, line => Console.Error.WriteLine(line), CancellationToken.None);
        if (args.Json) Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(done.ToArray(), CliJson.Default.StringArray));
        else Console.WriteLine(done.Count == 0 ? "nothing to clean up" : $"done: {done.Count} step(s)");
        return 0;
    }

    private static string StateDir(CliArgs args) => Path.GetFullPath(args.Value("--state-dir") ?? "/var/lib/solar-csi");

    private static string YesNo(bool value) => value ? "yes" : "NO";

    private static void PrintFindings(IReadOnlyList<Finding> findings)
    {
        if (findings.Count == 0)
        {
            Console.WriteLine("no disagreements between the journal and the kernel");
            return;
        }
        foreach (var f in findings)
        {
            Console.WriteLine($"! {f.Kind} {f.VolumeId}: {f.Detail}");
            foreach (var a in f.Actions) Console.WriteLine($"    would {a.Kind} {a.Path}");
        }
    }
}
