using SolarCsi.Core.Errors;
using SolarCsi.Node.Devices;

namespace SolarCsi.Node.Attach;

/// <summary>
/// Media that are block devices on this node already (LVM logical volumes, whole disks, pmem namespaces): there
/// is nothing to attach; the pool prepared the device (activated it, checked its identity) before the stage.
/// The device is named as mount(8) records it, so mountinfo comparisons hold for device-mapper devices too.
/// </summary>
public sealed class LocalDeviceAttacher : IBlockAttacher
{
    public string Kind => "device";

    public Task<string?> FindAttachedAsync(string source, CancellationToken ct) =>
        Task.FromResult(Path.Exists(source) ? DeviceNames.MountSource(source) : null);

    public async Task<string> AttachAsync(string source, bool readOnly, CancellationToken ct) =>
        await FindAttachedAsync(source, ct) ?? throw CsiErrors.FailedPrecondition($"device {source} does not exist on this node");

    // The device belongs to the pool for the volume's whole life; unstaging only unmounts it.
    public Task DetachAsync(string device, string source, CancellationToken ct) => Task.CompletedTask;

    // LVs and namespaces change size in place; the kernel's size in sysfs is already current.
    public Task RefreshCapacityAsync(string device, CancellationToken ct) => Task.CompletedTask;

    public async Task<string?> CheckAsync(string device, string source, CancellationToken ct) =>
        await FindAttachedAsync(source, ct) is { } found ? (found == device ? null : $"{source} is now {found}, not {device}") : $"device {source} is gone";
}
