using System.Security.Cryptography;
using SolarCsi.Core.Nbd;
using SolarCsi.Node.Attach;
using Xunit.Abstractions;
using static SolarCsi.Tests.Vm.GuestFacts;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The kernel NBD attach path (<see cref="NbdKernelAttacher"/>) with the guest's nbd module: an export on the
/// guest's loopback that requires TLS-PSK, the driver's local nbdkit proxy doing the TLS on a unix socket, and the
/// driver's nbd-client command line handing that socket to /dev/nbd0. The command lines are the attacher's own.
/// </summary>
[Collection(VmCollection.Name)]
public sealed class NbdKernelInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    private const string Export = "/tmp/nbd-export";

    [SkippableFact]
    public async Task BytesWrittenThroughDevNbdLandInTheExportAndReadOnlyRefusesWrites()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        var runner = new GuestProcessRunner(g);
        await g.RunOkAsync("modprobe nbd nbds_max=4");
        // What NbdKernelAttacher.IsSupported looks for on a node.
        Assert.Equal("yes", await g.RunOkAsync("[ -d /sys/module/nbd ] && [ -d /sys/block/nbd0 ] && echo yes"));

        var key = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        await g.RunOkAsync($"mkdir -p {Export} && truncate -s 64M {Export}/disk.img && echo node-k:{key} > {Export}/server.psk && " +
            $"nbdkit --pidfile {Export}/srv.pid --ipaddr 127.0.0.1 --port 10809 --tls=require --tls-psk={Export}/server.psk file file={Export}/disk.img");
        try
        {
            var sha = await g.RunOkAsync("head -c 8M /dev/urandom > /tmp/nbd-data && sha256sum < /tmp/nbd-data | cut -d' ' -f1");
            var device = await AttachAsync(g, runner, "rw", readOnly: false);
            Assert.Equal(64 * MiB, await g.DeviceBytesAsync(device));
            await g.RunOkAsync($"dd if=/tmp/nbd-data of={device} bs=1M oflag=direct conv=fsync status=none");
            await DetachAsync(g, runner, device, "rw");
            Assert.Equal(sha, await g.RunOkAsync($"head -c 8M {Export}/disk.img | sha256sum | cut -d' ' -f1"));

            // Read-only: the proxy serves --readonly and nbd-client sets the device read-only; the bytes read back.
            device = await AttachAsync(g, runner, "ro", readOnly: true);
            Assert.Equal("1", await g.RunOkAsync($"blockdev --getro {device}"));
            Assert.NotEqual(0, (await g.ShellAsync($"dd if=/dev/zero of={device} bs=4k count=1 oflag=direct status=none")).ExitCode);
            Assert.Equal(sha, await g.RunOkAsync($"head -c 8M {device} | sha256sum | cut -d' ' -f1"));
            await DetachAsync(g, runner, device, "ro");
            Assert.Equal(sha, await g.RunOkAsync($"head -c 8M {Export}/disk.img | sha256sum | cut -d' ' -f1"));
        }
        finally
        {
            output.WriteLine(string.Join("\n", runner.Commands));
            await g.ShellAsync("for d in /dev/nbd0 /dev/nbd1; do nbd-client -d $d; done; " +
                $"for p in /tmp/nbd-client-*/proxy.pid {Export}/srv.pid; do [ -f $p ] && kill $(cat $p); done; rm -rf {Export} /tmp/nbd-client-* /tmp/nbd-data");
        }
    }

    /// <summary>What AttachAsync does on a node, with its command lines: start the proxy, connect nbd-client to it.</summary>
    private async Task<string> AttachAsync(VmTestHost g, GuestProcessRunner runner, string name, bool readOnly)
    {
        // The client directory is written by the driver's own code on the shared folder, then copied into the guest's
        // /tmp: the proxy's unix socket must live on a local filesystem, not on 9p.
        var shared = Path.Combine(g.WorkDir, "nbd-client-" + name);
        var source = "/tmp/nbd-client-" + name;
        var key = (await g.RunOkAsync($"cut -d: -f2 {Export}/server.psk")).Trim();
        await NbdClientDirectory.WriteAsync(shared, new NbdConnection("127.0.0.1", 10809, "node-k", key, readOnly), CancellationToken.None);
        await g.RunOkAsync($"rm -rf {source} && cp -a {shared} {source}");
        var endpoint = NbdClientDirectory.Read(shared);
        var proxy = NbdKernelAttacher.ProxyArguments(source, endpoint);
        output.WriteLine("proxy: nbdkit " + string.Join(' ', proxy));
        // DaemonLauncher's job on a node: run it detached (setsid -f: see guest-agent.sh), wait for its socket.
        await g.RunOkAsync($"setsid -f nbdkit {Shell.Join(proxy)} > {source}/proxy.log 2>&1 < /dev/null; " +
            $"for i in $(seq 100); do [ -S {source}/proxy.sock ] && exit 0; sleep 0.1; done; cat {source}/proxy.log; exit 1");
        var device = "/dev/nbd0";
        await runner.RunAsync("nbd-client", NbdKernelAttacher.ClientArguments(Path.Combine(source, "proxy.sock"), device, readOnly), CancellationToken.None);
        // IsConnected on a node: the kernel shows the client's pid while the device is connected.
        Assert.Equal("yes", await g.RunOkAsync("[ -f /sys/block/nbd0/pid ] && echo yes || echo no"));
        return device;
    }

    private static async Task DetachAsync(VmTestHost g, GuestProcessRunner runner, string device, string name)
    {
        await runner.RunAsync("nbd-client", ["-d", device], CancellationToken.None);
        Assert.Equal("no", await g.RunOkAsync("[ -f /sys/block/nbd0/pid ] && echo yes || echo no"));
        await g.RunOkAsync($"kill $(cat /tmp/nbd-client-{name}/proxy.pid)");
    }
}
