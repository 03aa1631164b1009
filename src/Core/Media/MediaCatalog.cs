using SolarCsi.Core.Errors;
using SolarCsi.Core.Validation;

namespace SolarCsi.Core.Media;

/// <summary>
/// Every medium the driver knows, with its traits: the one place shared code learns what a medium name means (adding
/// a medium starts here; docs/architecture.md, "How to add a medium").
/// </summary>
public static class MediaCatalog
{
    public static readonly Medium File = new(VolumeParameters.FileMedia, CapabilityRules.LocalFile) { AttachedAs = AttachPath.ImageFile };

    /// <summary>Remote block over NBD: reachable from every node, one writer fenced at the export or many readers.</summary>
    public static readonly Medium Nbd = new(VolumeParameters.NbdMedia, CapabilityRules.Nbd)
    {
        AttachedAs = AttachPath.Remote,
        TakesRateLimits = true,
        AttachmentHealthMetric = ("solar_nbd_attachment_healthy", "1 while an NBD volume's attachment on this node works end to end, 0 when it is broken"),
    };

    public static readonly Medium Tmpfs = new(VolumeParameters.TmpfsMedia, CapabilityRules.Tmpfs) { AttachedAs = AttachPath.MountedFilesystem };

    public static readonly Medium Lvm = new(VolumeParameters.LvmMedia, CapabilityRules.LocalFile)
    {
        SnapshotFreezesItself = true,
        OwnParameters = new Dictionary<string, IReadOnlySet<string>>
        {
            [VolumeParameters.LvmTypeKey] = new HashSet<string>(StringComparer.Ordinal) { VolumeParameters.Thin, VolumeParameters.Thick },
        },
    };

    public static readonly Medium Disk = new(VolumeParameters.DiskMedia, CapabilityRules.LocalFile);

    public static readonly Medium Pmem = new(VolumeParameters.PmemMedia, CapabilityRules.LocalFile) { MountsWithDax = true };

    public static readonly IReadOnlyList<Medium> All = [File, Nbd, Tmpfs, Lvm, Disk, Pmem];

    public static Medium? Find(string name) => All.FirstOrDefault(m => m.Name == name);

    /// <summary>The medium <paramref name="name"/> names; INVALID_ARGUMENT for a name no medium has.</summary>
    public static Medium Of(string name) =>
        Find(name) ?? throw CsiErrors.InvalidArgument($"unknown media '{Ids.StorageId.Printable(name)}' (known: {string.Join(", ", All.Select(m => m.Name))})");
}
