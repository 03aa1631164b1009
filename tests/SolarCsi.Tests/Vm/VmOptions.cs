namespace SolarCsi.Tests.Vm;

/// <summary>
/// The guest's hardware. A disk or NVDIMM of 0 bytes is left out. Both are sparse files in the host temp folder,
/// so an unused 1 GiB disk costs nothing; the NVDIMM is guest RAM while mapped, so it stays small.
/// </summary>
public sealed record VmOptions(int MemoryMiB = 1024, int Cpus = 2, long DiskBytes = 1L << 30, long NvdimmBytes = 256L << 20)
{
    /// <summary>
    /// Extra virtio-serial ports, each a unix socket on the host (<see cref="VmTestHost.PortSocket"/>) and a
    /// /dev/vportNpM in the guest whose /sys/class/virtio-ports/*/name is the name: one byte stream each, e.g. a
    /// gRPC connection bridged to a plugin's socket in the guest. Each plugin start takes one (<see cref="VmTestHost.TakePort"/>).
    /// </summary>
    public IReadOnlyList<string> Ports { get; init; } = [.. Enumerable.Range(0, 16).Select(i => $"csi{i}")];

    /// <summary>TCG boots in ~10 s when idle; a loaded 2-core machine can take several times that.</summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>An upper bound on the guest's life, so a test run killed hard cannot leave qemu running for long.</summary>
    public TimeSpan MaxLifetime { get; init; } = TimeSpan.FromMinutes(30);
}
