using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Processes;
using SolarCsi.Node.Attach;

namespace SolarCsi.Tests.Nbd;

/// <summary>The production attach path; runs only where the nbd kernel module is loaded.</summary>
public sealed class KernelNbdTests
{
    [SkippableFact]
    public async Task AttachesAnExportThroughTheKernel()
    {
        Skip.IfNot(NbdKernelAttacher.IsSupported(), "no nbd kernel module here (/sys/module/nbd or /sys/block/nbd0 absent); production nodes have it");
        using var dir = new TempDir();
        var image = Path.Combine(dir.Path, "disk.img");
        await using (var f = File.Create(image)) f.SetLength(16 << 20);
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var launcher = new DaemonLauncher(runner);
        var key = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "server.psk"), $"node-k:{key}\n");
        var serverPid = await launcher.StartAsync("nbdkit", ["--foreground", "--pidfile", Path.Combine(dir.Path, "srv.pid"), "--ipaddr", "127.0.0.1",
            "--port", "10799", "--tls=require", "--tls-psk=" + Path.Combine(dir.Path, "server.psk"), "file", "file=" + image],
            Path.Combine(dir.Path, "srv.pid"), Path.Combine(dir.Path, "srv.log"), TimeSpan.FromSeconds(10), CancellationToken.None);
        var client = Path.Combine(dir.Path, "client");
        try
        {
            await NbdClientDirectory.WriteAsync(client, new SolarCsi.Core.Nbd.NbdConnection("127.0.0.1", 10799, "node-k", key, false), CancellationToken.None);
            var attacher = new NbdKernelAttacher(runner, launcher, NullLogger<NbdKernelAttacher>.Instance);
            var device = await attacher.AttachAsync(client, readOnly: false, CancellationToken.None);
            Assert.StartsWith("/dev/nbd", device);
            Assert.Equal(device, await attacher.FindAttachedAsync(client, CancellationToken.None));
            await using (var d = new FileStream(device, FileMode.Open, FileAccess.Write)) { d.Write("hello"u8); d.Flush(true); }
            await attacher.DetachAsync(device, client, CancellationToken.None);
            Assert.Null(await attacher.FindAttachedAsync(client, CancellationToken.None));
            Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(image)[..5]));
        }
        finally
        {
            await Pid.StopAsync(serverPid, kill: true, TimeSpan.FromSeconds(5), CancellationToken.None);
        }
    }
}
