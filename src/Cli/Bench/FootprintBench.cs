using System.Diagnostics;
using System.Globalization;
using System.Text;
using Csi.V1;
using Grpc.Net.Client;
using SolarCsi.Core.Ids;
using SolarCsi.Local;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.Cli;

/// <summary>
/// Start-up time, idle memory and memory after a burst of CSI calls, for the controller and the node plugin, as the
/// NativeAOT binaries that ship and as the JIT build of this checkout, each started afresh several times.
/// </summary>
internal static class FootprintBench
{
    private sealed record Variant(string Name, string Controller, string Node);

    private sealed class Figures
    {
        public Samples ServingMs { get; } = new();
        public Samples ReadyMs { get; } = new();
        public Samples IdleMiB { get; } = new();
        public Samples IdleFileMiB { get; } = new();
        public Samples IdleAnonMiB { get; } = new();
        public Samples AfterMiB { get; } = new();
        public Samples CallsPerSecond { get; } = new();
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = new CliArgs(args);
        var runs = Int(cli, "--runs", 5);
        var calls = Int(cli, "--calls", 10_000);
        var idle = Int(cli, "--idle-seconds", 5);
        var concurrency = Int(cli, "--concurrency", 8);
        var output = cli.Value("--out");
        var variants = new List<Variant>();
        if ((cli.Value("--aot-dir") ?? Environment.GetEnvironmentVariable("SOLAR_BIN_DIR")) is { Length: > 0 } aot)
            variants.Add(new Variant("NativeAOT", Path.Combine(aot, "solar-controller"), Path.Combine(aot, "solar-node")));
        if (!cli.Has("--no-jit"))
        {
            var jit = BinaryLocator.FromCheckout();
            variants.Add(new Variant("JIT (framework-dependent build)", jit.Controller, jit.Node));
        }
        if (variants.Count == 0) throw new UsageException("nothing to measure: give --aot-dir DIR or leave the JIT build in");

        var figures = new Dictionary<(string Variant, string Plugin), Figures>();
        foreach (var variant in variants)
        {
            foreach (var plugin in new[] { "controller", "node" }) figures[(variant.Name, plugin)] = new Figures();
            // One unmeasured run first: the bench's own gRPC client is JIT-compiled on its first calls, and the
            // binaries come into the page cache, neither of which is the plugin's start-up.
            await MeasureOnceAsync(variant, new Figures(), new Figures(), Math.Min(calls, 500), concurrency, 0);
            for (var run = 1; run <= runs; run++)
            {
                await MeasureOnceAsync(variant, figures[(variant.Name, "controller")], figures[(variant.Name, "node")], calls, concurrency, idle);
                var c = figures[(variant.Name, "controller")];
                var n = figures[(variant.Name, "node")];
                Console.WriteLine($"{variant.Name} run {run}/{runs}: controller serving {Samples.Ms(Last(c.ServingMs))}, idle {Last(c.IdleMiB):0.0} MiB, " +
                                  $"after {calls} calls {Last(c.AfterMiB):0.0} MiB; node ready {Samples.Ms(Last(n.ReadyMs))}, idle {Last(n.IdleMiB):0.0} MiB, " +
                                  $"after {calls} calls {Last(n.AfterMiB):0.0} MiB");
            }
        }

        var report = Report(variants, figures, runs, calls, idle, concurrency);
        Console.WriteLine(report);
        if (output is not null) await File.WriteAllTextAsync(output, report);
        return 0;
    }

    private static double Last(Samples samples) => samples.LastAdded;

    private static async Task MeasureOnceAsync(Variant variant, Figures controller, Figures node, int calls, int concurrency, int idleSeconds)
    {
        var dir = Directory.CreateTempSubdirectory("solar-bench-footprint-").FullName;
        var logs = Path.Combine(dir, "logs");
        Directory.CreateDirectory(logs);
        var controllerCsi = Path.Combine(dir, "controller", "csi.sock");
        var registry = Path.Combine(dir, "controller", "registry.sock");
        var nodeCsi = Path.Combine(dir, "node-a", "csi.sock");
        var kubelet = Path.Combine(dir, "kubelet");
        Directory.CreateDirectory(kubelet);
        PluginProcess? controllerProcess = null, nodeProcess = null;
        var channels = new List<GrpcChannel>();
        try
        {
            // As deployed (deploy/base), with metrics served; the agent timeout is halved from the default so the
            // controller's warm-up (half of it) does not dominate the run.
            var clock = Stopwatch.StartNew();
            controllerProcess = PluginProcess.Start("controller", variant.Controller, SolarCsi.Core.Hosting.CommandLine.Format(SolarCsi.Controller.ControllerOptions.Flags, [
                ("endpoint", "unix://" + controllerCsi), ("registry-endpoint", "unix://" + registry), ("agent-timeout-seconds", "10"),
                ("metrics-address", $"127.0.0.1:{LocalCluster.FreePort()}"),
            ]), Path.Combine(logs, "controller.log"));
            var controllerProcessRef = controllerProcess;
            var controllerChannel = await PluginFootprint.WaitServingAsync(controllerCsi, TimeSpan.FromSeconds(30), () => controllerProcessRef.HasExited);
            channels.Add(controllerChannel);
            var controllerIdentity = new Identity.IdentityClient(controllerChannel);
            await PluginFootprint.WaitProbeAsync(controllerIdentity, ready: false, TimeSpan.FromSeconds(30));
            controller.ServingMs.Add(clock.Elapsed);
            var controllerStart = clock.Elapsed;

            clock.Restart();
            nodeProcess = PluginProcess.Start("node-a", variant.Node, SolarCsi.Core.Hosting.CommandLine.Format(SolarCsi.Node.NodeOptions.Flags, [
                ("endpoint", "unix://" + nodeCsi), ("node-id", "node-a"), ("state-dir", LocalCluster.StateDirOf(Path.Combine(dir, "node-a"))),
                ("agent-endpoint", $"unix://{dir}/node-a/agent.sock"), ("controller-endpoint", "unix://" + registry), ("allowed-root", kubelet),
                ("file-pool-capacity", "16Gi"), ("nbd-address", "127.0.0.1"), ("nbd-port-range", $"{BenchPorts.Footprint}-{BenchPorts.Footprint + 99}"),
                ("metrics-address", $"127.0.0.1:{LocalCluster.FreePort()}"),
            ]), Path.Combine(logs, "node-a.log"));
            var nodeProcessRef = nodeProcess;
            var nodeChannel = await PluginFootprint.WaitServingAsync(nodeCsi, TimeSpan.FromSeconds(30), () => nodeProcessRef.HasExited);
            channels.Add(nodeChannel);
            var nodeIdentity = new Identity.IdentityClient(nodeChannel);
            await PluginFootprint.WaitProbeAsync(nodeIdentity, ready: false, TimeSpan.FromSeconds(30));
            node.ServingMs.Add(clock.Elapsed);
            await PluginFootprint.WaitProbeAsync(nodeIdentity, ready: true, TimeSpan.FromSeconds(30));
            node.ReadyMs.Add(clock.Elapsed);

            await PluginFootprint.WaitProbeAsync(controllerIdentity, ready: true, TimeSpan.FromSeconds(30));
            controller.ReadyMs.AddMs(controllerStart.TotalMilliseconds + clock.Elapsed.TotalMilliseconds);

            await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
            foreach (var (figures, process) in new[] { (controller, controllerProcess), (node, nodeProcess) })
            {
                var idle = PluginFootprint.Rss(process.Id);
                figures.IdleMiB.AddMs(idle.Total);
                figures.IdleFileMiB.AddMs(idle.File);
                figures.IdleAnonMiB.AddMs(idle.Anonymous);
            }

            node.CallsPerSecond.AddMs(await PluginFootprint.HammerAsync(calls, concurrency, NodeMix(nodeChannel, kubelet)));
            controller.CallsPerSecond.AddMs(await PluginFootprint.HammerAsync(calls, concurrency, ControllerMix(controllerChannel)));
            controller.AfterMiB.AddMs(PluginFootprint.Rss(controllerProcess.Id).Total);
            node.AfterMiB.AddMs(PluginFootprint.Rss(nodeProcess.Id).Total);
        }
        finally
        {
            foreach (var channel in channels) channel.Dispose();
            if (nodeProcess is not null) await nodeProcess.StopAsync();
            if (controllerProcess is not null) await controllerProcess.StopAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>What kubelet asks a node plugin between volume operations, and a stats call for a volume it does not have.</summary>
    private static IReadOnlyList<Func<Task>> NodeMix(GrpcChannel channel, string kubelet)
    {
        var identity = new Identity.IdentityClient(channel);
        var node = new Csi.V1.Node.NodeClient(channel);
        var missing = new NodeGetVolumeStatsRequest { VolumeId = "file~default~node-a~v" + new string('0', 24), VolumePath = Path.Combine(kubelet, "nothing") };
        return
        [
            async () => await identity.ProbeAsync(new ProbeRequest()),
            async () => await identity.GetPluginInfoAsync(new GetPluginInfoRequest()),
            async () => await node.NodeGetCapabilitiesAsync(new NodeGetCapabilitiesRequest()),
            async () => await node.NodeGetInfoAsync(new NodeGetInfoRequest()),
            async () => await node.NodeGetVolumeStatsAsync(missing),
        ];
    }

    /// <summary>The sidecars' read-only calls; GetCapacity and ListVolumes ask the node's agent over its socket.</summary>
    private static IReadOnlyList<Func<Task>> ControllerMix(GrpcChannel channel)
    {
        var identity = new Identity.IdentityClient(channel);
        var controller = new Csi.V1.Controller.ControllerClient(channel);
        var topology = new Topology { Segments = { NodeTopology.Of("node-a") } };
        var validate = new ValidateVolumeCapabilitiesRequest
        {
            VolumeId = "file~default~node-a~v" + new string('0', 24),
            VolumeCapabilities = { new VolumeCapability { Mount = new VolumeCapability.Types.MountVolume(), AccessMode = new VolumeCapability.Types.AccessMode { Mode = AccessMode.SingleNodeWriter } } },
        };
        return
        [
            async () => await identity.ProbeAsync(new ProbeRequest()),
            async () => await identity.GetPluginInfoAsync(new GetPluginInfoRequest()),
            async () => await controller.ControllerGetCapabilitiesAsync(new ControllerGetCapabilitiesRequest()),
            async () => await controller.GetCapacityAsync(new GetCapacityRequest { AccessibleTopology = topology }),
            async () => await controller.ListVolumesAsync(new ListVolumesRequest()),
            async () => await controller.ValidateVolumeCapabilitiesAsync(validate),
        ];
    }

    private static int Int(CliArgs cli, string flag, int fallback) =>
        cli.Value(flag) is { } text ? int.TryParse(text, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : throw new UsageException($"{flag} needs a positive number") : fallback;

    private static string Spread(Samples s, string format, string unit) =>
        $"{s.Median.ToString(format, CultureInfo.InvariantCulture)}{unit} [{s.Min.ToString(format, CultureInfo.InvariantCulture)}–{s.Max.ToString(format, CultureInfo.InvariantCulture)}]";

    private static string Report(IReadOnlyList<Variant> variants, Dictionary<(string Variant, string Plugin), Figures> figures, int runs, int calls, int idle, int concurrency)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Footprint: start-up and memory of the plugins");
        sb.AppendLine();
        sb.AppendLine($"`solar bench-footprint --runs {runs} --calls {calls} --idle-seconds {idle} --concurrency {concurrency}`. Each run starts a controller and a");
        sb.AppendLine("node plugin afresh (unix sockets, metrics served, workstation GC as the projects set it; controller `--agent-timeout-seconds 10`,");
        sb.AppendLine("node with its default 5 s heartbeat and 60 s reconcile), waits for both to be ready, lets them idle, reads VmRSS from");
        sb.AppendLine($"/proc/PID/status, then makes {calls} CSI calls to each ({concurrency} callers; node: Probe, GetPluginInfo, NodeGetCapabilities,");
        sb.AppendLine("NodeGetInfo, NodeGetVolumeStats of a missing volume; controller: Probe, GetPluginInfo, ControllerGetCapabilities, GetCapacity and");
        sb.AppendLine("ListVolumes (both ask the node's agent), ValidateVolumeCapabilities of a missing volume) and reads VmRSS again.");
        sb.AppendLine("\"Serving\" is process start to the first Probe answer; the node is ready when its start-up reconcile is done; the");
        sb.AppendLine("controller says ready only after its warm-up (half the agent timeout, here 5 s) so that agents can announce themselves —");
        sb.AppendLine($"a deliberate wait, not start-up work. Figures: median [min–max] over {runs} runs after an unmeasured one (binaries in the");
        sb.AppendLine("page cache, the bench's client warm). Goal: ≤ 25 MB idle, ≤ 100 ms to ready.");
        sb.AppendLine();
        sb.AppendLine($"| plugin | build | binary | start → serving | start → ready | idle RSS | RSS after {calls} calls | calls/s |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var variant in variants)
        {
            foreach (var (plugin, binary) in new[] { ("controller", variant.Controller), ("node", variant.Node) })
            {
                var f = figures[(variant.Name, plugin)];
                var size = variant.Name == "NativeAOT" ? $"{new FileInfo(binary).Length / 1048576.0:0.0} MiB" : "dll + shared runtime";
                var ready = Spread(f.ReadyMs, "0", " ms") + (plugin == "controller" ? " (warm-up)" : "");
                sb.AppendLine($"| {plugin} | {variant.Name} | {size} | {Spread(f.ServingMs, "0", " ms")} | {ready} | {Spread(f.IdleMiB, "0.0", " MiB")} | " +
                              $"{Spread(f.AfterMiB, "0.0", " MiB")} | {Spread(f.CallsPerSecond, "0", "")} |");
            }
        }
        sb.AppendLine();
        sb.AppendLine("Idle RSS split, median: file-backed pages (the executable's code and data, shared with every process that maps");
        sb.AppendLine("the same file) / anonymous memory (heap, stacks, runtime data):");
        sb.AppendLine();
        foreach (var variant in variants)
            foreach (var plugin in new[] { "controller", "node" })
            {
                var f = figures[(variant.Name, plugin)];
                sb.AppendLine($"- {plugin}, {variant.Name}: {f.IdleFileMiB.Median:0.0} MiB file-backed / {f.IdleAnonMiB.Median:0.0} MiB anonymous");
            }
        return sb.ToString();
    }
}
