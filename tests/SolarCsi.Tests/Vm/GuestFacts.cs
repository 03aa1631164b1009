using System.Globalization;

namespace SolarCsi.Tests.Vm;

/// <summary>Small readings taken in the guest, shared by the VM tests.</summary>
internal static class GuestFacts
{
    public const long MiB = 1 << 20;

    public static async Task<string> RunOkAsync(this VmTestHost vm, string script, TimeSpan? timeout = null) =>
        (await vm.ShellAsync(script, timeout)).EnsureSuccess(script).StandardOutput.Trim();

    /// <summary>statfs total bytes (f_blocks × f_frsize), what df reports as the size.</summary>
    public static async Task<long> FilesystemBytesAsync(this VmTestHost vm, string mountPoint)
    {
        var parts = (await vm.RunOkAsync($"stat -f -c '%b %S' {Shell.Quote(mountPoint)}")).Split(' ');
        return long.Parse(parts[0], CultureInfo.InvariantCulture) * long.Parse(parts[1], CultureInfo.InvariantCulture);
    }

    public static async Task<long> DeviceBytesAsync(this VmTestHost vm, string device) =>
        long.Parse(await vm.RunOkAsync($"blockdev --getsize64 {Shell.Quote(device)}"), CultureInfo.InvariantCulture);

    /// <summary>Writes <paramref name="mib"/> MiB of random bytes to a file and returns their sha256.</summary>
    public static Task<string> WriteRandomAsync(this VmTestHost vm, string path, int mib) =>
        vm.RunOkAsync($"head -c {mib}M /dev/urandom > {Shell.Quote(path)} && sync && sha256sum < {Shell.Quote(path)} | cut -d' ' -f1");

    /// <summary>The sha256 of a file read back after the page cache is dropped, so the bytes come from the device.</summary>
    public static Task<string> ReadBackAsync(this VmTestHost vm, string path) =>
        vm.RunOkAsync($"sync; echo 3 > /proc/sys/vm/drop_caches; sha256sum < {Shell.Quote(path)} | cut -d' ' -f1");
}
