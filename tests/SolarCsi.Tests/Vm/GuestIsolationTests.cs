using Xunit.Abstractions;

namespace SolarCsi.Tests.Vm;

/// <summary>What every other VM test relies on: the guest is the host's userland on Debian's 6.1 kernel, root, offline.</summary>
[Collection(VmCollection.Name)]
public sealed class GuestIsolationTests(VmFixture vm, ITestOutputHelper output)
{
    [SkippableFact]
    public async Task GuestRunsTheHostUserlandOfflineAsRoot()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        output.WriteLine($"boot to agent ready: {vm.Host.BootTime.TotalSeconds:0.0} s");
        Assert.StartsWith("6.1.", await vm.Host.RunOkAsync("uname -r"));
        // No network device: only loopback, so nothing a test starts can reach or be reached from outside.
        Assert.Equal("lo", await vm.Host.RunOkAsync("ls /sys/class/net"));
        Assert.Equal("0", await vm.Host.RunOkAsync("id -u"));
        // The read-write share is the same folder on both sides.
        await vm.Host.RunOkAsync($"echo from-guest > {Shell.Quote(Path.Combine(vm.Host.WorkDir, "probe"))}");
        Assert.Equal("from-guest\n", await File.ReadAllTextAsync(Path.Combine(vm.Host.WorkDir, "probe")));
        // The host root is read-only underneath, writable through the guest's tmpfs overlay.
        await vm.Host.RunOkAsync("echo x > /etc/solar-vm-probe");
        Assert.False(File.Exists("/etc/solar-vm-probe"));
        var failed = await vm.Host.RunAsync("sh", "-c", "echo out; echo err >&2; exit 3");
        Assert.Equal(new GuestResult(3, "out\n", "err\n"), failed);
    }
}
