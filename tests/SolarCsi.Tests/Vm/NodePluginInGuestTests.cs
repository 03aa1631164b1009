using System.Net.Sockets;
using Csi.V1;
using Grpc.Net.Client;
using SolarCsi.Core.Hosting;
using Xunit.Abstractions;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The NativeAOT node plugin running in the guest, reached from the host over its CSI socket: a virtio-serial port
/// whose guest end socat bridges to the plugin's unix socket (the guest has no network). The binary is not built
/// here (a NativeAOT publish takes minutes): SOLAR_VM_NODE_BINARY names a published solar-node, else the checkout's
/// own build runs there. It runs all-in-one, so one socket carries Identity, Controller and Node, and the volume
/// lifecycle runs through CSI as a CO drives it — including the online ext4 expansion this host's test process
/// cannot do (no CAP_SYS_RESOURCE here; the guest is root with every capability) and the production NBD attach path
/// (the kernel's nbd module, which this host lacks).
/// </summary>
[Collection(VmCollection.Name)]
public sealed class NodePluginInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    [SkippableFact]
    public async Task ServesCsiFromTheGuestGrowsExt4OnlineAndAttachesNbdThroughTheKernel()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        // A NativeAOT solar-node if one is given (what ships); else this checkout's build, copied to the folder the
        // guest shares (the guest mounts fresh tmpfs over /tmp, /run and /mnt, where a checkout may live), started with
        // the host's .NET runtime, visible through the guest's read-only root.
        var binary = Environment.GetEnvironmentVariable("SOLAR_VM_NODE_BINARY");
        if (binary is null)
        {
            var build = Path.GetDirectoryName(SolarCsi.Core.Local.BinaryLocator.FromCheckout().Node)!;
            var copy = Path.Combine(g.WorkDir, "node-build");
            foreach (var file in Directory.EnumerateFiles(build, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(copy, Path.GetRelativePath(build, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target, overwrite: true);
                if (Path.GetFileName(file) == "solar-node") File.SetUnixFileMode(target, File.GetUnixFileMode(file));
            }
            binary = Path.Combine(copy, "solar-node");
        }
        Assert.True(File.Exists(binary), $"{binary} does not exist");
        Assert.False(new[] { "/tmp/", "/run/", "/mnt/" }.Any(binary.StartsWith) && !binary.StartsWith(g.WorkDir, StringComparison.Ordinal),
            $"{binary}: the guest cannot see /tmp, /run or /mnt of the host; publish elsewhere (e.g. artifacts/)");
        // Host end first: the guest's socat would read end-of-file from an unconnected port and quit.
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(g.PortSocket("csi")));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            // nbd before the plugin starts: it picks its NBD attach path (kernel where the module is) once, at start.
            await g.RunOkAsync("modprobe loop && modprobe nbd nbds_max=8 && mkdir -p /run/solar-state /run/kubelet /run/csi && " +
                $"setsid -f {Shell.Quote(binary)} --mode all-in-one --endpoint unix:///run/csi/csi.sock --state-dir /run/solar-state --node-id vmnode " +
                "--allowed-root /run/kubelet --file-pool-capacity 1Gi > /run/solar-node.log 2>&1 < /dev/null; " +
                "for i in $(seq 300); do [ -S /run/csi/csi.sock ] && exit 0; sleep 0.1; done; cat /run/solar-node.log; exit 1", TimeSpan.FromSeconds(60));
            output.WriteLine($"plugin socket up {watch.Elapsed.TotalSeconds:0.0} s after the start command");
            await g.RunOkAsync("for d in /sys/class/virtio-ports/*; do [ \"$(cat $d/name)\" = csi ] && P=/dev/${d##*/}; done; " +
                "setsid -f socat OPEN:$P UNIX-CONNECT:/run/csi/csi.sock > /run/socat.log 2>&1 < /dev/null");
            var once = socket;
            var handler = new SocketsHttpHandler
            {
                // One virtio-serial port is one byte stream: exactly one HTTP/2 connection can ride it.
                ConnectCallback = (_, _) => ValueTask.FromResult<Stream>(new NetworkStream(Interlocked.Exchange(ref once, null)
                    ?? throw new InvalidOperationException("the csi port carries one connection"), ownsSocket: true)),
            };
            using var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler });
            var info = await new Identity.IdentityClient(channel).GetPluginInfoAsync(new GetPluginInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
            Assert.Equal(PluginIdentity.DefaultDriverName, info.Name);
            Assert.True((await new Identity.IdentityClient(channel).ProbeAsync(new ProbeRequest())).Ready ?? false);
            var node = await new Csi.V1.Node.NodeClient(channel).NodeGetInfoAsync(new NodeGetInfoRequest());
            Assert.Equal("vmnode", node.NodeId);
            output.WriteLine($"GetPluginInfo {info.Name} {info.VendorVersion}, NodeGetInfo {node.NodeId} max {node.MaxVolumesPerNode}; {watch.Elapsed.TotalSeconds:0.0} s");
            await GrowAMountedExt4OnlineAsync(g, channel);
            output.WriteLine($"online ext4 expansion through CSI done; {watch.Elapsed.TotalSeconds:0.0} s");
            await AttachAnNbdVolumeThroughTheKernelAsync(g, channel);
            output.WriteLine($"kernel NBD through CSI done; {watch.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
            output.WriteLine(await g.RunOkAsync("tail -20 /run/solar-node.log; cat /run/socat.log; true"));
            await g.ShellAsync("for m in $(findmnt -rn -o TARGET | grep ^/run/kubelet | sort -r); do umount $m; done; losetup -D; " +
                "pkill -x socat; pkill -f /solar-node; rm -rf /run/solar-state /run/csi /run/kubelet");
        }
    }

    /// <summary>
    /// The production NBD path end to end, through the plugin: the node's nbd pool exports the volume (nbdkit, TLS-PSK,
    /// on the guest's loopback), NodeStage attaches it with the kernel path (a local TLS proxy, nbd-client, /dev/nbdN —
    /// the plugin chose it at start because the nbd module is loaded), formats and mounts it; bytes written, the
    /// attachment reported healthy, unstaged (the device disconnected), staged again and the bytes read back.
    /// </summary>
    private static async Task AttachAnNbdVolumeThroughTheKernelAsync(VmTestHost g, GrpcChannel channel)
    {
        var volume = await GuestVolume.CreateAndAttachAsync(g, channel, "nbd-in-guest", "nbd", 64 << 20);
        Assert.StartsWith("/dev/nbd", await g.RunOkAsync($"findmnt -n -o SOURCE {volume.Staging}"));
        var sha = await g.WriteRandomAsync(volume.Target + "/data.bin", 8);
        var stats = await volume.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.Id, VolumePath = volume.Target },
            deadline: GuestVolume.Deadline());
        Assert.False(stats.VolumeCondition.Abnormal, stats.VolumeCondition.Message);

        await volume.DetachAsync();
        Assert.Equal("", await g.RunOkAsync("ls /sys/block/nbd*/pid 2>/dev/null; true"));
        await volume.AttachAsync();
        Assert.Equal(sha, await g.ReadBackAsync(volume.Target + "/data.bin"));

        await volume.DeleteAsync();
        Assert.Equal("", await g.RunOkAsync("findmnt -rn -o TARGET | grep ^/run/kubelet; ls /sys/block/nbd*/pid 2>/dev/null; pgrep -a nbdkit; true"));
    }

    /// <summary>
    /// CreateVolume, ControllerPublish, NodeStage and NodePublish of an ext4 volume, data written, ControllerExpand
    /// and NodeExpand while it is mounted: the filesystem grows online and the data stays; then the teardown.
    /// </summary>
    private static async Task GrowAMountedExt4OnlineAsync(VmTestHost g, GrpcChannel channel)
    {
        var volume = await GuestVolume.CreateAndAttachAsync(g, channel, "grow-in-guest", "file", 320 << 20);
        var sha = await g.WriteRandomAsync(volume.Target + "/data.bin", 8);
        var before = await g.FilesystemBytesAsync(volume.Target);

        var grown = await volume.Controller.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
        {
            VolumeId = volume.Id, CapacityRange = new CapacityRange { RequiredBytes = 640 << 20 }, VolumeCapability = GuestVolume.Capability,
        }, deadline: GuestVolume.Deadline());
        Assert.True(grown.NodeExpansionRequired);
        var expanded = await volume.Node.NodeExpandVolumeAsync(new NodeExpandVolumeRequest
        {
            VolumeId = volume.Id, VolumePath = volume.Target, StagingTargetPath = volume.Staging, VolumeCapability = GuestVolume.Capability,
            CapacityRange = new CapacityRange { RequiredBytes = grown.CapacityBytes },
        }, deadline: GuestVolume.Deadline());
        Assert.Equal(640 << 20, expanded.CapacityBytes);
        var after = await g.FilesystemBytesAsync(volume.Target);
        Assert.True(after > before + (250 << 20), $"the mounted ext4 grew from {before} to {after} bytes only");
        Assert.Equal(sha, await g.ReadBackAsync(volume.Target + "/data.bin"));

        await volume.DeleteAsync();
        Assert.Equal("", await g.RunOkAsync("findmnt -rn -o TARGET | grep ^/run/kubelet; losetup -l -n; true"));
    }

    /// <summary>One ext4, single-node-writer volume of the guest's all-in-one plugin, driven in kubelet's order.</summary>
    private sealed class GuestVolume(VmTestHost g, GrpcChannel channel, string name, Volume volume, IDictionary<string, string> publishContext)
    {
        public static readonly VolumeCapability Capability = new()
        {
            Mount = new VolumeCapability.Types.MountVolume { FsType = "ext4" },
            AccessMode = new VolumeCapability.Types.AccessMode { Mode = VolumeCapability.Types.AccessMode.Types.Mode.SingleNodeWriter },
        };

        public static DateTime Deadline() => DateTime.UtcNow.AddSeconds(120);

        public Csi.V1.Controller.ControllerClient Controller { get; } = new(channel);
        public Csi.V1.Node.NodeClient Node { get; } = new(channel);
        public string Id => volume.VolumeId;
        public string Staging { get; } = $"/run/kubelet/plugins/kubernetes.io/csi/staging/{name}";
        public string Target { get; } = $"/run/kubelet/pods/{name}/volumes/mount";

        /// <summary>CreateVolume, ControllerPublish to the guest's node, NodeStage, NodePublish.</summary>
        public static async Task<GuestVolume> CreateAndAttachAsync(VmTestHost g, GrpcChannel channel, string name, string media, long bytes)
        {
            var controller = new Csi.V1.Controller.ControllerClient(channel);
            var volume = (await controller.CreateVolumeAsync(new CreateVolumeRequest
            {
                Name = name, CapacityRange = new CapacityRange { RequiredBytes = bytes }, VolumeCapabilities = { Capability },
                Parameters = { ["media"] = media },
            }, deadline: Deadline())).Volume;
            var publish = await controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volume.VolumeId, NodeId = "vmnode", VolumeCapability = Capability,
            }, deadline: Deadline());
            var guestVolume = new GuestVolume(g, channel, name, volume, publish.PublishContext);
            await guestVolume.AttachAsync();
            return guestVolume;
        }

        public async Task AttachAsync()
        {
            // kubelet creates the staging directory and the target's parent.
            await g.RunOkAsync($"mkdir -p {Staging} {Path.GetDirectoryName(Target)}");
            await Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
            {
                VolumeId = Id, StagingTargetPath = Staging, VolumeCapability = Capability, PublishContext = { publishContext },
                VolumeContext = { volume.VolumeContext },
            }, deadline: Deadline());
            await Node.NodePublishVolumeAsync(new NodePublishVolumeRequest
            {
                VolumeId = Id, StagingTargetPath = Staging, TargetPath = Target, VolumeCapability = Capability,
                PublishContext = { publishContext }, VolumeContext = { volume.VolumeContext },
            }, deadline: Deadline());
        }

        public async Task DetachAsync()
        {
            await Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = Id, TargetPath = Target }, deadline: Deadline());
            await Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = Id, StagingTargetPath = Staging }, deadline: Deadline());
        }

        /// <summary>Detach, ControllerUnpublish, DeleteVolume.</summary>
        public async Task DeleteAsync()
        {
            await DetachAsync();
            await Controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = Id, NodeId = "vmnode" }, deadline: Deadline());
            await Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = Id }, deadline: Deadline());
        }
    }
}
