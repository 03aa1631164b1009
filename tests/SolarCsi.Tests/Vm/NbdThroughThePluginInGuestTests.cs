using System.Globalization;
using Csi.V1;
using Xunit.Abstractions;
using static Csi.V1.VolumeCapability.Types.AccessMode.Types;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// NBD volumes through the kernel attach path of the NativeAOT plugin in the guest (nbd module, TLS-PSK proxy,
/// nbd-client, /dev/nbdN), driven over CSI: raw block, read-only-many, a server killed under a writer, a writer revoked,
/// and the plugin killed at each step of the attach and detach. The guest is one node, so read-only-many is two pods
/// on it; several nodes reading one export are the sanity suite's (nbdfuse, which this host has).
/// </summary>
[Collection(VmCollection.Name)]
public sealed class NbdThroughThePluginInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    private const string Connected = "ls /sys/block/nbd*/pid 2>/dev/null | wc -l";

    [SkippableFact]
    public async Task RawBlockWritesAndReadOnlyManyReadsGoThroughKernelDevices()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        await using var plugin = await GuestPlugin.StartAsync(g);
        try
        {
            // Raw block, single writer: bytes through the device file kubelet hands the pod, read back after a re-stage.
            var block = await GuestVolume.CreateAndAttachAsync(g, plugin, "nbd-block", "nbd", 32 << 20, GuestVolume.Block());
            Assert.Equal("block", await g.RunOkAsync($"stat -c %F {block.Target} | cut -d' ' -f1"));
            // Debian's nbd-client speaks no TLS-PSK, so it talks plain NBD to the local proxy, which does the TLS: that
            // hop is a root-owned unix socket in the plugin's 0700 state directory: no one but root on the node can reach it.
            var proxy = $"{GuestPlugin.StateDir}/node/nbd/{block.Id}/proxy.sock";
            Assert.Equal("socket", await g.RunOkAsync($"stat -c %F {proxy}"));
            var stranger = await g.ShellAsync($"setpriv --reuid=65534 --regid=65534 --clear-groups socat -u /dev/null UNIX-CONNECT:{proxy}");
            Assert.NotEqual(0, stranger.ExitCode);
            Assert.Contains("Permission denied", stranger.StandardError);
            var sha = await WriteBlockAsync(g, block.Target, 4);
            await block.DetachAsync();
            Assert.Equal("0", await g.RunOkAsync(Connected));
            await block.ControllerUnpublishAsync();

            // Read-only many: the same export attached read-only (nbd-client -readonly), two pods on the node.
            block.Capability = GuestVolume.Block(Mode.MultiNodeReaderOnly);
            block.ReadOnly = true;
            await block.ControllerPublishAsync();
            await block.StageAsync();
            var second = block.Target + "-2";
            await block.PublishAsync();
            await block.PublishAsync(second);
            Assert.Equal(sha, await ReadBlockAsync(g, block.Target, 4));
            Assert.Equal(sha, await ReadBlockAsync(g, second, 4));
            var device = await g.RunOkAsync($"cat {GuestPlugin.StateDir}/node/nbd/{block.Id}/device");
            Assert.Equal("1", await g.RunOkAsync($"blockdev --getro {device}"));
            Assert.NotEqual(0, (await g.ShellAsync($"dd if=/dev/zero of={block.Target} bs=4k count=1 oflag=direct conv=notrunc status=none")).ExitCode);
            await block.UnpublishAsync(second);
            await block.DetachAsync();
            await block.ControllerUnpublishAsync();
            await block.DeleteVolumeAsync();

            // A filesystem read by many: written once by a writer, then mounted read-only from a read-only device.
            var fs = await GuestVolume.CreateAndAttachAsync(g, plugin, "nbd-rox", "nbd", 64 << 20);
            var fileSha = await g.WriteRandomAsync(fs.Target + "/shared.bin", 4);
            await fs.DetachAsync();
            await fs.ControllerUnpublishAsync();
            fs.Capability = GuestVolume.Ext4(Mode.MultiNodeReaderOnly);
            fs.ReadOnly = true;
            await fs.ControllerPublishAsync();
            await fs.StageAsync();
            await fs.PublishAsync();
            await fs.PublishAsync(fs.Target + "-2");
            Assert.Equal(fileSha, await g.ReadBackAsync(fs.Target + "/shared.bin"));
            Assert.Equal(fileSha, await g.ReadBackAsync(fs.Target + "-2/shared.bin"));
            Assert.Contains("Read-only file system", (await g.ShellAsync($"touch {fs.Target}/nope")).StandardError);
            await fs.UnpublishAsync(fs.Target + "-2");
            await fs.DeleteAsync();
            Assert.Equal("0", await g.RunOkAsync(Connected));
        }
        finally
        {
            output.WriteLine(await plugin.LogTailAsync());
        }
    }

    /// <summary>
    /// Read-only-many across nodes: a controller and two node plugins in the guest (one kernel, so both attach through
    /// the nbd module), a file written through one node, then the same export attached read-only by both — each node
    /// through its own key, proxy and /dev/nbdN — read back on both, writes refused, and no node turned into a writer
    /// while readers hold it.
    /// </summary>
    [SkippableFact]
    public async Task TwoNodesReadOneExportEachThroughItsOwnKernelDevice()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        await using var cluster = await GuestCluster.StartAsync(g, "node-a", "node-b");
        var (a, b) = (cluster.Nodes[0], cluster.Nodes[1]);
        try
        {
            var writer = await GuestVolume.CreateAndAttachAsync(g, a, "rox-writer", "nbd", 64 << 20);
            var sha = await g.WriteRandomAsync(writer.Target + "/shared.bin", 4);
            await writer.DetachAsync();
            await writer.ControllerUnpublishAsync();

            var readers = new[]
            {
                writer.On(a, "rox-reader-a", GuestVolume.Ext4(Mode.MultiNodeReaderOnly), readOnly: true),
                writer.On(b, "rox-reader-b", GuestVolume.Ext4(Mode.MultiNodeReaderOnly), readOnly: true),
            };
            foreach (var reader in readers)
            {
                await reader.ControllerPublishAsync();
                await reader.AttachAsync();
            }
            Assert.Equal("2", await g.RunOkAsync(Connected));
            var devices = new HashSet<string>();
            foreach (var reader in readers)
            {
                devices.Add(await g.RunOkAsync($"findmnt -n -o SOURCE {reader.Staging}"));
                Assert.Equal(sha, await g.ReadBackAsync(reader.Target + "/shared.bin"));
                Assert.Contains("Read-only file system", (await g.ShellAsync($"touch {reader.Target}/nope")).StandardError);
            }
            Assert.Equal(2, devices.Count(d => d.StartsWith("/dev/nbd", StringComparison.Ordinal)));
            var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => writer.On(b, "rox-writer-b", GuestVolume.Ext4(), readOnly: false).ControllerPublishAsync());
            Assert.Equal(Grpc.Core.StatusCode.AlreadyExists, refused.StatusCode);

            foreach (var reader in readers)
            {
                await reader.DetachAsync();
                await reader.ControllerUnpublishAsync();
            }
            Assert.Equal("0", await g.RunOkAsync(Connected));
            await writer.DeleteVolumeAsync();
            Assert.Equal("", await g.RunOkAsync("pgrep -a nbdkit; true"));
        }
        finally
        {
            output.WriteLine(await cluster.LogTailAsync());
        }
    }

    /// <summary>
    /// The export's server is SIGKILLed under a writer: the writer's next write fails with EIO within seconds (not
    /// the kernel's 30 s request timeout: the proxy fails the requests as soon as its upstream is gone), the
    /// attachment is reported abnormal, unstage releases the device, the node restores the export by itself, and a new
    /// stage reads back what was written before the kill. Then ControllerUnpublish of the live writer (the CO moving the
    /// volume away from an unresponsive node) cuts its writes off too.
    /// </summary>
    [SkippableFact]
    public async Task AKilledServerOrARevokedWriterFailsTheWritesAndTheNodeRecovers()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        await using var plugin = await GuestPlugin.StartAsync(g, "--reconcile-seconds 3");
        try
        {
            var volume = await GuestVolume.CreateAndAttachAsync(g, plugin, "nbd-killed", "nbd", 32 << 20, GuestVolume.Block());
            var sha = await WriteBlockAsync(g, volume.Target, 4);
            await StartWriterAsync(g, volume.Target);
            var killed = await g.RunOkAsync("date +%s.%N; for p in $(pgrep -x nbdkit); do tr '\\0' ' ' < /proc/$p/cmdline | grep -q hostname= || kill -KILL $p; done");
            var failedAfter = await WaitForWriterFailureAsync(g, killed);
            output.WriteLine($"first failed write {failedAfter:0.00} s after the server was killed");
            var condition = await volume.ConditionAsync();
            Assert.True(condition.Abnormal, "the attachment of a killed server is reported healthy");
            output.WriteLine($"condition: {condition.Message}");

            await volume.DetachAsync();
            Assert.Equal("0", await g.RunOkAsync(Connected));
            // The reconcile pass (every 3 s here) brings the export back; the stage retries until it is up, as kubelet does.
            await RetryAsync(volume.StageAsync, TimeSpan.FromSeconds(60));
            await volume.PublishAsync();
            Assert.Equal(sha, await ReadBlockAsync(g, volume.Target, 4));

            // Revoked: the CO unpublishes the volume from this node while its writer is still attached.
            await StartWriterAsync(g, volume.Target);
            var revoked = await g.RunOkAsync("date +%s.%N");
            await volume.ControllerUnpublishAsync();
            output.WriteLine($"first failed write {await WaitForWriterFailureAsync(g, revoked):0.00} s after ControllerUnpublish");
            Assert.True((await volume.ConditionAsync()).Abnormal, "a revoked attachment is reported healthy");
            await volume.DetachAsync();
            Assert.Equal("0", await g.RunOkAsync(Connected));
            await volume.DeleteVolumeAsync();
        }
        finally
        {
            await g.ShellAsync("pkill -f /run/writer.sh");
            output.WriteLine(await plugin.LogTailAsync());
        }
    }

    /// <summary>
    /// The plugin SIGKILLed where the kernel path can be caught half-way — after nbd-client connected but before the
    /// device was recorded, after the attach but before the journal names the device, after the unmount but before the
    /// disconnect — and started again: the retried call finishes the job with the device already connected (never a
    /// second /dev/nbdN for the volume), and the unstage leaves no device connected.
    /// </summary>
    [SkippableFact]
    public async Task APluginKilledInTheMiddleOfTheKernelAttachPathLeavesOneDeviceAndReleasesIt()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        await using var plugin = await GuestPlugin.StartAsync(g);
        try
        {
            var volume = await GuestVolume.CreateAsync(g, plugin, "nbd-crash", 64 << 20, GuestVolume.Ext4(), new Dictionary<string, string> { ["media"] = "nbd" });
            await volume.ControllerPublishAsync();
            string? sha = null;
            foreach (var point in new[] { "nbd:after-connect", "stage:after-attach" })
            {
                await plugin.KillAsync();
                await plugin.StartAsync(faultPoints: point);
                await plugin.ExpectFaultAsync(point, volume.StageAsync);
                Assert.Equal("1", await g.RunOkAsync(Connected));
                await plugin.StartAsync();
                await volume.StageAsync();
                await volume.PublishAsync();
                Assert.Equal("1", await g.RunOkAsync(Connected));
                if (sha is null) sha = await g.WriteRandomAsync(volume.Target + "/data.bin", 4);
                else Assert.Equal(sha, await g.ReadBackAsync(volume.Target + "/data.bin"));
                await volume.DetachAsync();
                Assert.Equal("0", await g.RunOkAsync(Connected));
            }
            // The first restart found the device only through the record made before nbd-client ran.
            Assert.Contains("adopted /dev/nbd", await plugin.LogLinesAsync("adopted"));

            await volume.AttachAsync();
            await plugin.KillAsync();
            await plugin.StartAsync(faultPoints: "unstage:after-unmount");
            await volume.UnpublishAsync();
            await plugin.ExpectFaultAsync("unstage:after-unmount", volume.UnstageAsync);
            Assert.Equal("1", await g.RunOkAsync(Connected));
            await plugin.StartAsync();
            await volume.UnstageAsync();
            Assert.Equal("0", await g.RunOkAsync(Connected));
            Assert.Equal("", await g.RunOkAsync($"findmnt -rn -o TARGET | grep ^{GuestPlugin.KubeletDir}; true"));
            await volume.ControllerUnpublishAsync();
            await volume.DeleteVolumeAsync();
            Assert.Equal("", await g.RunOkAsync("pgrep -a nbdkit; true"));
        }
        finally
        {
            output.WriteLine(await plugin.LogTailAsync());
        }
    }

    private static Task<string> WriteBlockAsync(VmTestHost g, string target, int mib) =>
        g.RunOkAsync($"head -c {mib}M /dev/urandom > /run/payload && dd if=/run/payload of={target} bs=1M oflag=direct conv=notrunc,fsync status=none && " +
                     "sha256sum < /run/payload | cut -d' ' -f1; rm -f /run/payload");

    private static Task<string> ReadBlockAsync(VmTestHost g, string target, int mib) =>
        g.RunOkAsync($"dd if={target} bs=1M count={mib} iflag=direct status=none | sha256sum | cut -d' ' -f1");

    /// <summary>A writer in the guest writing 4 KiB with O_DIRECT in a loop until a write fails; it notes when.</summary>
    private static async Task StartWriterAsync(VmTestHost g, string target)
    {
        await g.RunOkAsync("rm -f /run/w.ok /run/w.failed /run/w.err; cat > /run/writer.sh <<'EOF'\n" +
            "i=0; while :; do i=$(( (i + 1) % 1024 ))\n" +
            $"  if dd if=/dev/urandom of={target} bs=4k count=1 seek=$((2048 + i)) oflag=direct conv=notrunc status=none 2>>/run/w.err; then touch /run/w.ok\n" +
            "  else date +%s.%N > /run/w.failed; exit 0; fi\ndone\nEOF\n" +
            "setsid -f bash /run/writer.sh < /dev/null > /dev/null 2>&1; for i in $(seq 100); do [ -f /run/w.ok ] && exit 0; sleep 0.1; done; cat /run/w.err; exit 1");
    }

    /// <summary>Seconds from <paramref name="since"/> (guest clock) to the writer's first failed write; it must fail within 30 s, with EIO.</summary>
    private static async Task<double> WaitForWriterFailureAsync(VmTestHost g, string since)
    {
        var failed = await g.ShellAsync("for i in $(seq 300); do [ -f /run/w.failed ] && { cat /run/w.failed; exit 0; }; sleep 0.1; done; exit 1", TimeSpan.FromSeconds(60));
        Assert.True(failed.ExitCode == 0, "writes kept succeeding for 30 s");
        Assert.Contains("Input/output error", await g.RunOkAsync("cat /run/w.err"));
        return double.Parse(failed.StandardOutput.Trim(), CultureInfo.InvariantCulture) - double.Parse(since, CultureInfo.InvariantCulture);
    }

    private static async Task RetryAsync(Func<Task> call, TimeSpan limit)
    {
        var until = DateTime.UtcNow + limit;
        while (true)
        {
            try
            {
                await call();
                return;
            }
            catch (Grpc.Core.RpcException) when (DateTime.UtcNow < until)
            {
                await Task.Delay(1000);
            }
        }
    }
}
