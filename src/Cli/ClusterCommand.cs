using System.Runtime.InteropServices;
using SolarCsi.Local;

namespace SolarCsi.Cli;

/// <summary>
/// Runs the single-machine deployment in the foreground until interrupted, for tools that want live sockets
/// (the upstream csi-sanity, csc, a debugger).
/// </summary>
internal static class ClusterCommand
{
    public static async Task<int> RunAsync(CliArgs args)
    {
        var dir = args.Value("--dir") ?? Directory.CreateTempSubdirectory("solar-cluster-").FullName;
        var nodes = int.Parse(args.Value("--nodes") ?? "1");
        Directory.CreateDirectory(dir);
        var stop = new TaskCompletionSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
        // Local media pools (tmpfs, lvm, disk, pmem) for node-a, as its --pools-config file would declare them.
        var pools = args.Value("--pools-config") is { } file
            ? new Dictionary<string, string> { ["node-a"] = await File.ReadAllTextAsync(file) }
            : null;
        await using var cluster = await LocalCluster.StartAsync(dir, Enumerable.Range(0, nodes).Select(i => $"node-{(char)('a' + i)}").ToArray(),
            Console.WriteLine, poolsConfig: pools);
        Console.WriteLine($"controller: unix://{dir}/controller/csi.sock");
        foreach (var node in cluster.Nodes) Console.WriteLine($"{node.NodeId}: unix://{node.Directory}/csi.sock");
        Console.WriteLine($"kubelet dir (allowed root): {cluster.KubeletDir}");
        Console.WriteLine("ready");
        await stop.Task;
        Console.WriteLine("stopping");
        return 0;
    }
}
