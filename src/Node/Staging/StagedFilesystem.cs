using Microsoft.Extensions.Logging;
using SolarCsi.Core.Diagnostics;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Media;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;

namespace SolarCsi.Node.Staging;

/// <summary>
/// The filesystem half of a stage: an attached device becomes a mounted filesystem at the staging path (probed,
/// formatted only when blank and writable, grown to its device, mounted with the medium's options), or a source
/// that is a filesystem already is bound there. Repeating a step on what is already in place changes nothing.
/// </summary>
public sealed class StagedFilesystem(IMounter mounter, BlockDevices devices, Filesystems filesystems, ILogger<StagedFilesystem> logger)
{
    /// <summary>A source that is a filesystem already (a volume's tmpfs): the staging path is a bind of it.</summary>
    public async Task BindAsync(string source, string device, StageRequest request, bool readOnly, CancellationToken ct)
    {
        if (await InPlaceAsync(device, request, ct)) return;
        Directory.CreateDirectory(request.StagingPath);
        await mounter.BindAsync(source, request.StagingPath, readOnly, ct);
        FaultPoints.Hit("stage:after-mount");
    }

    /// <summary>Mounts the filesystem of <paramref name="device"/>; true when it had none and was formatted now.</summary>
    public async Task<bool> MountAsync(string device, StageRequest request, bool readOnly, CancellationToken ct)
    {
        if (await InPlaceAsync(device, request, ct)) return false;

        // Never format what we cannot see: an empty or unreadable device is an attach failure, not a blank disk.
        var size = devices.SizeOf(device);
        if (size <= 0) throw CsiErrors.Internal($"device {device} reports size 0; refusing to probe or format it");
        var signatures = await devices.ProbeAsync(device, ct);
        var dax = MediaCatalog.Of(StorageId.ParseVolume(request.VolumeId).Media).MountsWithDax;
        if (signatures.Count == 0 && readOnly)
            throw CsiErrors.FailedPrecondition($"volume {request.VolumeId} is read-only here and has no filesystem; populate it through a writer (or a snapshot) first");
        var formatted = false;
        if (signatures.Count == 0)
        {
            FaultPoints.Fail("mkfs");
            await filesystems.FormatAsync(device, request.FsType, dax ? Filesystems.ForDax(request.FsType, request.MkfsOptions ?? []) : request.MkfsOptions ?? [], ct);
            FaultPoints.Hit("stage:after-format");
            formatted = true;
        }
        else if (!signatures.TryGetValue("TYPE", out var found) || found != request.FsType)
        {
            var what = signatures.TryGetValue("TYPE", out var t) ? $"a {t} filesystem" : signatures.TryGetValue("PTTYPE", out var pt) ? $"a {pt} partition table" : "unknown data";
            throw CsiErrors.FailedPrecondition($"device {device} of volume {request.VolumeId} holds {what}, not {request.FsType}; refusing to mount or format it");
        }

        // A filesystem smaller than its device (restored or cloned into a bigger volume, expanded while detached):
        // the pod must get the size it asked for. ext4 grows before the mount, xfs only while mounted.
        var grow = !formatted && !readOnly;
        if (grow && request.FsType == "ext4" && await filesystems.Ext4SizeAsync(device, ct) + CapacityRules.MiB < size)
        {
            logger.LogInformation("growing the ext4 of {VolumeId} on {Device} to {Bytes} bytes before mounting it", request.VolumeId, device, size);
            await filesystems.GrowExt4OfflineAsync(device, ct);
        }
        Directory.CreateDirectory(request.StagingPath);
        await mounter.MountAsync(device, request.StagingPath, request.FsType, MountOptions(request.FsType, request.MountFlags, readOnly, dax), ct);
        FaultPoints.Hit("stage:after-mount");
        // xfs_growfs is a no-op on a filesystem that already fills its device.
        if (grow && request.FsType == "xfs") await filesystems.GrowAsync(device, request.StagingPath, "xfs", ct);
        return formatted;
    }

    /// <summary>The staging path shows the device already (a repeated stage); anything else there is refused.</summary>
    private async Task<bool> InPlaceAsync(string device, StageRequest request, CancellationToken ct)
    {
        if ((await mounter.ListAsync(ct)).TopAt(request.StagingPath) is not { } existing) return false;
        if (existing.Shows(device)) return true;
        throw CsiErrors.AlreadyExists($"staging path {request.StagingPath} already holds a mount of {existing.Source}");
    }

    public static IReadOnlyList<string> MountOptions(string fsType, IReadOnlyList<string> flags, bool readOnly, bool dax = false)
    {
        var options = new List<string>(flags);
        // Persistent memory: load/store straight to the media, bypassing the page cache.
        if (dax && !options.Any(o => o.StartsWith("dax", StringComparison.Ordinal))) options.Add("dax");
        // Two mounts of the same xfs (a clone and its source) would clash on the UUID otherwise.
        if (fsType == "xfs" && !options.Contains("nouuid")) options.Add("nouuid");
        if (readOnly)
        {
            // Many readers share one export: nobody may replay the journal, which would be a write.
            options.Add("ro");
            options.Add(fsType == "xfs" ? "norecovery" : "noload");
        }
        return options;
    }
}
