using Grpc.Net.Client;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The NativeAOT node plugin running all-in-one in the guest (one socket carries Identity, Controller and Node), reached
/// from the host over its CSI socket: a virtio-serial port whose guest end socat bridges to the plugin's unix socket
/// (the guest has no network). Kill and start it again as a crash would; each start is a new process on the same
/// state directory with a fresh port and channel. Dispose stops it and removes what its volumes left in the guest.
/// </summary>
public sealed class GuestPlugin : IGuestCsi, IAsyncDisposable
{
    public const string Id = "vmnode";
    public const string StateDir = "/run/solar-state";
    public const string KubeletDir = "/run/kubelet";
    private const string Log = "/run/solar-node.log";

    private readonly VmTestHost _g;
    private readonly string _binary;
    private readonly string _arguments;

    private GuestPlugin(VmTestHost g, string binary, string arguments)
    {
        _g = g;
        _binary = binary;
        _arguments = arguments;
    }

    public GrpcChannel Channel { get; private set; } = null!;
    public Csi.V1.Controller.ControllerClient Controller { get; private set; } = null!;
    public Csi.V1.Node.NodeClient Node { get; private set; } = null!;
    public string NodeId => Id;

    /// <summary>How long the last start took from the command to a listening socket.</summary>
    public TimeSpan StartTime { get; private set; }

    /// <summary>
    /// Starts the plugin with the loop and nbd modules loaded (it picks its NBD attach path once, at start: the kernel's
    /// where the module is). <paramref name="extraArguments"/> go after the common flags, already shell-quoted.
    /// </summary>
    public static async Task<GuestPlugin> StartAsync(VmTestHost g, string extraArguments = "", string? faultPoints = null)
    {
        await g.RunOkAsync($"modprobe loop && modprobe nbd nbds_max=8 && mkdir -p {StateDir} {KubeletDir} /run/csi");
        var plugin = new GuestPlugin(g, await GuestBinary.NodeAsync(g),
            $"--mode all-in-one --endpoint unix:///run/csi/csi.sock --state-dir {StateDir} --node-id {Id} --allowed-root {KubeletDir} {extraArguments}");
        await plugin.StartAsync(faultPoints);
        return plugin;
    }

    /// <summary>Starts the plugin process (again), with <paramref name="faultPoints"/> armed (SOLAR_FAULT_POINTS) if given.</summary>
    public async Task StartAsync(string? faultPoints = null)
    {
        var env = faultPoints is null ? "" : $"SOLAR_FAULT_POINTS={Shell.Quote(faultPoints)} ";
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await _g.RunOkAsync($"rm -f /run/csi/csi.sock; [ -f {Log} ] && cat {Log} >> {Log}.before && : > {Log}; {env}setsid -f {Shell.Quote(_binary)} {_arguments} >> {Log} 2>&1 < /dev/null; " +
            $"for i in $(seq 300); do [ -S /run/csi/csi.sock ] && exit 0; sleep 0.1; done; tail -30 {Log}; exit 1", TimeSpan.FromSeconds(60));
        StartTime = watch.Elapsed;
        var channel = await GuestBridge.OpenAsync(_g, "/run/csi/csi.sock");
        Channel?.Dispose();
        Channel = channel;
        Controller = new Csi.V1.Controller.ControllerClient(Channel);
        Node = new Csi.V1.Node.NodeClient(Channel);
    }

    /// <summary>SIGKILL, as the OOM killer or a lost node would: no cleanup; the helpers it started live on.</summary>
    public async Task KillAsync()
    {
        await _g.RunOkAsync("pkill -KILL -f '/solar-node --mode' ; for i in $(seq 100); do pgrep -f '/solar-node --mode' >/dev/null || exit 0; sleep 0.1; done; exit 1");
        await _g.ShellAsync("pkill -x socat");
    }

    /// <summary>
    /// Makes <paramref name="call"/>, which must bring the plugin to SIGKILL itself at the armed <paramref name="point"/>,
    /// and waits for that. The host end of a virtio-serial port does not see the guest end close, so the call is cut
    /// by closing the channel once the plugin is gone, not left to its deadline.
    /// </summary>
    public async Task ExpectFaultAsync(string point, Func<Task> call)
    {
        var pending = call();
        await _g.RunOkAsync($"for i in $(seq 600); do pgrep -f '/solar-node --mode' >/dev/null || {{ grep -q 'fault point {point} reached' {Log} && exit 0; tail -20 {Log}; exit 1; }}; sleep 0.1; done; exit 1",
            TimeSpan.FromSeconds(90));
        Channel.Dispose();
        await Assert.ThrowsAnyAsync<Exception>(() => pending);
        await _g.ShellAsync("pkill -x socat");
    }

    /// <summary>Lines of the plugin's log, this start's and earlier ones', that contain <paramref name="text"/>.</summary>
    public Task<string> LogLinesAsync(string text) => _g.RunOkAsync($"cat {Log}.before {Log} 2>/dev/null | grep -F {Shell.Quote(text)}; true");

    public Task<string> LogTailAsync(int lines = 30) => _g.RunOkAsync($"tail -{lines} {Log}; true");

    public async ValueTask DisposeAsync()
    {
        Channel?.Dispose();
        await _g.ShellAsync("pkill -f '/solar-node --mode'; pkill -x socat; sleep 0.5; " +
            $"for m in $(findmnt -rn -o TARGET | grep ^{KubeletDir} | sort -r); do umount $m; done; " +
            "for d in /sys/block/nbd*; do [ -e $d/pid ] && nbd-client -d /dev/${d##*/}; done; pkill nbdkit; losetup -D; " +
            $"rm -rf {StateDir} /run/csi {KubeletDir} {Log} {Log}.before /run/socat.log");
    }
}
