using Csi.V1;
using SolarCsi.Core.Hosting;
using Xunit.Abstractions;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The NativeAOT node plugin in the guest (<see cref="GuestPlugin"/>), driven over CSI as a CO drives it: the online
/// ext4 expansion this host's test process cannot do (no CAP_SYS_RESOURCE here; the guest is root with every
/// capability) and the production NBD attach path (the kernel's nbd module, which this host lacks).
/// </summary>
[Collection(VmCollection.Name)]
public sealed class NodePluginInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    [SkippableFact]
    public async Task ServesCsiFromTheGuestGrowsExt4OnlineAndAttachesNbdThroughTheKernel()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await using var plugin = await GuestPlugin.StartAsync(g, "--file-pool-capacity 1Gi");
        try
        {
            output.WriteLine($"plugin socket up {plugin.StartTime.TotalSeconds:0.0} s after the start command");
            var identity = new Identity.IdentityClient(plugin.Channel);
            var info = await identity.GetPluginInfoAsync(new GetPluginInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
            Assert.Equal(PluginIdentity.DefaultDriverName, info.Name);
            Assert.True((await identity.ProbeAsync(new ProbeRequest())).Ready ?? false);
            var node = await plugin.Node.NodeGetInfoAsync(new NodeGetInfoRequest());
            Assert.Equal(GuestPlugin.Id, node.NodeId);
            output.WriteLine($"GetPluginInfo {info.Name} {info.VendorVersion}, NodeGetInfo {node.NodeId} max {node.MaxVolumesPerNode}; {watch.Elapsed.TotalSeconds:0.0} s");
            await GrowAMountedExt4OnlineAsync(g, plugin);
            output.WriteLine($"online ext4 expansion through CSI done; {watch.Elapsed.TotalSeconds:0.0} s");
            await AttachAnNbdVolumeThroughTheKernelAsync(g, plugin);
            output.WriteLine($"kernel NBD through CSI done; {watch.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
            output.WriteLine(await plugin.LogTailAsync(20));
        }
    }

    /// <summary>
    /// The production NBD path end to end, through the plugin: the node's nbd pool exports the volume (nbdkit, TLS-PSK,
    /// on the guest's loopback), NodeStage attaches it with the kernel path (a local TLS proxy, nbd-client, /dev/nbdN —
    /// the plugin chose it at start because the nbd module is loaded), formats and mounts it; bytes written, the
    /// attachment reported healthy, unstaged (the device disconnected), staged again and the bytes read back.
    /// </summary>
    private static async Task AttachAnNbdVolumeThroughTheKernelAsync(VmTestHost g, GuestPlugin plugin)
    {
        var volume = await GuestVolume.CreateAndAttachAsync(g, plugin, "nbd-in-guest", "nbd", 64 << 20);
        Assert.StartsWith("/dev/nbd", await g.RunOkAsync($"findmnt -n -o SOURCE {volume.Staging}"));
        var sha = await g.WriteRandomAsync(volume.Target + "/data.bin", 8);
        var condition = await volume.ConditionAsync();
        Assert.False(condition.Abnormal, condition.Message);

        await volume.DetachAsync();
        Assert.Equal("", await g.RunOkAsync("ls /sys/block/nbd*/pid 2>/dev/null; true"));
        await volume.AttachAsync();
        Assert.Equal(sha, await g.ReadBackAsync(volume.Target + "/data.bin"));

        await volume.DeleteAsync();
        Assert.Equal("", await g.RunOkAsync($"findmnt -rn -o TARGET | grep ^{GuestPlugin.KubeletDir}; ls /sys/block/nbd*/pid 2>/dev/null; pgrep -a nbdkit; true"));
    }

    /// <summary>
    /// CreateVolume, ControllerPublish, NodeStage and NodePublish of an ext4 volume, data written, ControllerExpand
    /// and NodeExpand while it is mounted: the filesystem grows online and the data stays; then the teardown.
    /// </summary>
    private static async Task GrowAMountedExt4OnlineAsync(VmTestHost g, GuestPlugin plugin)
    {
        var volume = await GuestVolume.CreateAndAttachAsync(g, plugin, "grow-in-guest", "file", 320 << 20);
        var sha = await g.WriteRandomAsync(volume.Target + "/data.bin", 8);
        var before = await g.FilesystemBytesAsync(volume.Target);

        Assert.Equal(640 << 20, await volume.GrowOnlineAsync(640 << 20));
        var after = await g.FilesystemBytesAsync(volume.Target);
        Assert.True(after > before + (250 << 20), $"the mounted ext4 grew from {before} to {after} bytes only");
        Assert.Equal(sha, await g.ReadBackAsync(volume.Target + "/data.bin"));

        await volume.DeleteAsync();
        Assert.Equal("", await g.RunOkAsync($"findmnt -rn -o TARGET | grep ^{GuestPlugin.KubeletDir}; losetup -l -n; true"));
    }
}
