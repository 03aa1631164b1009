using SolarCsi.Node.Processes;

namespace SolarCsi.Cli;

/// <summary>Which media this machine can run for the demo, and why the others cannot.</summary>
internal sealed record DemoMedia(IReadOnlyList<(string Media, string Reason)> Unavailable, IReadOnlyList<string> MissingTools)
{
    /// <summary>The media the demo walked, in order (for its closing line).</summary>
    public static List<string> Walked { get; } = [];

    /// <summary>The tools the walked media need (file, tmpfs, disk, NBD served and attached); none may be missing.</summary>
    private static readonly string[] Tools =
        ["losetup", "mount", "umount", "blkid", "mkfs.ext4", "e2fsck", "resize2fs", "dumpe2fs", "wipefs", "tar", "cp", "nbdkit", "nbdfuse", "fusermount3"];

    public static DemoMedia Detect()
    {
        var unavailable = new List<(string, string)>();
        // LVM needs the kernel's device-mapper; pmem needs an NVDIMM region (real or emulated by a VM).
        if (!File.Exists("/dev/mapper/control") && !File.ReadAllText("/proc/misc").Contains("device-mapper", StringComparison.Ordinal))
            unavailable.Add(("lvm", "this kernel has no device-mapper"));
        if (!Directory.Exists("/sys/bus/nd/devices") || !Directory.EnumerateDirectories("/sys/bus/nd/devices", "region*").Any())
            unavailable.Add(("pmem", "this machine has no persistent-memory region"));
        return new DemoMedia(unavailable, HostTools.MissingOf(Tools));
    }
}

/// <summary>A loop device over a sparse image, standing in for a node's spare drive (the demo has none to give).</summary>
internal sealed class DemoDisk : IAsyncDisposable
{
    private readonly IProcessRunner _runner;
    private readonly string _dir;

    private DemoDisk(IProcessRunner runner, string dir, string device)
    {
        _runner = runner;
        _dir = dir;
        Device = device;
    }

    public string Device { get; }

    /// <summary>The image lives outside the cluster's directory: to the driver it is hardware, not one of its files.</summary>
    public static async Task<DemoDisk> CreateAsync(long bytes)
    {
        var dir = Directory.CreateTempSubdirectory("solar-demo-disk-").FullName;
        var image = Path.Combine(dir, "spare.img");
        await using (var file = new FileStream(image, FileMode.CreateNew)) file.SetLength(bytes);
        var runner = new ProcessRunner(Microsoft.Extensions.Logging.Abstractions.NullLogger<ProcessRunner>.Instance);
        var device = (await runner.RunAsync("losetup", ["--find", "--show", "--", image], CancellationToken.None)).StandardOutput.Trim();
        return new DemoDisk(runner, dir, device);
    }

    /// <summary>blkid finds no filesystem or partition table on it (exit code 2: nothing).</summary>
    public async Task<bool> IsBlankAsync() =>
        (await _runner.RunAsync("blkid", ["--probe", "--", Device], CancellationToken.None, okExitCodes: [0, 2])).ExitCode == 2;

    public async ValueTask DisposeAsync()
    {
        await _runner.RunAsync("losetup", ["--detach", Device], CancellationToken.None, okExitCodes: [0, 1]);
        Directory.Delete(_dir, recursive: true);
    }
}
