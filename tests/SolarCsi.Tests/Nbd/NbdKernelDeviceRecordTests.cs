using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Nbd;

/// <summary>
/// Which /dev/nbdN a volume's kernel attachment is, against a fake sysfs and /proc/net/unix: the kernel keeps no
/// trace of it, so the volume's folder does — including after a crash between nbd-client and the record (the VM test
/// APluginKilledInTheMiddleOfTheKernelAttachPathLeavesOneDeviceAndReleasesIt runs that crash for real).
/// </summary>
public sealed class NbdKernelDeviceRecordTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string Source => Path.Combine(_dir.Path, "vol");
    private string SysBlock => Path.Combine(_dir.Path, "sys");
    private string NetUnix => Path.Combine(_dir.Path, "unix");

    public NbdKernelDeviceRecordTests()
    {
        Directory.CreateDirectory(Source);
        foreach (var n in new[] { "nbd0", "nbd1" }) Directory.CreateDirectory(Path.Combine(SysBlock, n));
        File.WriteAllText(NetUnix, "Num       RefCount Protocol Flags    Type St Inode Path\n");
    }

    public void Dispose() => _dir.Dispose();

    private NbdKernelAttacher Attacher() =>
        new(new ProcessRunner(NullLogger<ProcessRunner>.Instance), new DaemonLauncher(new ProcessRunner(NullLogger<ProcessRunner>.Instance)),
            NullLogger<NbdKernelAttacher>.Instance, SysBlock, NetUnix);

    private void Connect(string name) => File.WriteAllText(Path.Combine(SysBlock, name, "pid"), "4242\n");

    /// <summary>The proxy's listening socket (state 01) and, if <paramref name="accepted"/>, one connection it accepted (03).</summary>
    private void ProxySockets(bool accepted)
    {
        var socket = Path.Combine(Source, "proxy.sock");
        var lines = $"0000000000000000: 00000002 00000000 00010000 0001 01 31337 {socket}\n";
        if (accepted) lines += $"0000000000000000: 00000003 00000000 00000000 0001 03 31338 {socket}\n";
        lines += "0000000000000000: 00000003 00000000 00000000 0001 03 31339\n";
        File.AppendAllText(NetUnix, lines);
    }

    [Fact]
    public async Task TheRecordedDeviceIsTheVolumesWhileItIsConnected()
    {
        File.WriteAllText(Path.Combine(Source, "device"), "/dev/nbd1");
        Assert.Null(await Attacher().FindAttachedAsync(Source, CancellationToken.None));
        Connect("nbd1");
        Assert.Equal("/dev/nbd1", await Attacher().FindAttachedAsync(Source, CancellationToken.None));
    }

    [Fact]
    public async Task ADeviceConnectedJustBeforeACrashIsAdoptedWhenTheVolumesProxyHasItsConnection()
    {
        File.WriteAllText(Path.Combine(Source, "device.pending"), "/dev/nbd0");
        Connect("nbd0");
        ProxySockets(accepted: true);
        Assert.Equal("/dev/nbd0", await Attacher().FindAttachedAsync(Source, CancellationToken.None));
        // Finding writes nothing (health checks find without the volume's slot); the stage's attach records it, and the
        // device is found from then on without the pending note.
        Assert.False(File.Exists(Path.Combine(Source, "device")));
        Assert.Equal("/dev/nbd0", await Attacher().AttachAsync(Source, readOnly: false, CancellationToken.None));
        Assert.Equal("/dev/nbd0", File.ReadAllText(Path.Combine(Source, "device")));
        Assert.False(File.Exists(Path.Combine(Source, "device.pending")));
    }

    [Fact]
    public async Task APendingDeviceServingSomeoneElseIsNotTaken()
    {
        // The crash came before nbd-client connected; another volume took the free device since: our proxy has no client.
        File.WriteAllText(Path.Combine(Source, "device.pending"), "/dev/nbd0");
        Connect("nbd0");
        ProxySockets(accepted: false);
        Assert.Null(await Attacher().FindAttachedAsync(Source, CancellationToken.None));
        // Nor a pending device that is not connected at all.
        File.WriteAllText(Path.Combine(Source, "device.pending"), "/dev/nbd1");
        ProxySockets(accepted: true);
        Assert.Null(await Attacher().FindAttachedAsync(Source, CancellationToken.None));
        Assert.False(File.Exists(Path.Combine(Source, "device")));
    }
}
