using SolarCsi.Core.Validation;

namespace SolarCsi.Core.Media;

/// <summary>
/// What a medium is to the code every medium shares: the controller, the CSI layers, validation, metrics. Shared code
/// asks the medium (<see cref="MediaCatalog.Of"/>) instead of comparing its name; what a medium does on a node (its
/// pool, its attach path) lives in its own folder there.
/// </summary>
/// <param name="Capabilities">the access modes, fs types and raw block it serves.</param>
public sealed record Medium(string Name, CapabilityRules Capabilities)
{
    /// <summary>How a node turns a volume's source into something to stage (which attach path serves it).</summary>
    public AttachPath AttachedAs { get; init; } = AttachPath.LocalDevice;

    /// <summary>Its volumes live on one node and are reachable only there: topology pins them, and they are published to that node only.</summary>
    public bool IsLocal => AttachedAs != AttachPath.Remote;

    /// <summary>The node formats it, so mkfsOptions apply; false for a medium that is a filesystem already.</summary>
    public bool IsFormatted => AttachedAs != AttachPath.MountedFilesystem;

    /// <summary>
    /// Its snapshot freezes the volume's filesystem itself (an LVM thin snapshot suspends its origin through
    /// device-mapper). A filesystem already frozen with FIFREEZE makes that suspend fail with EBUSY on Linux before 6.8
    /// (Debian 12's 6.1 among them; measured in the VM test host), so a group's freeze leaves such members to their own snapshot.
    /// </summary>
    public bool SnapshotFreezesItself { get; init; }

    /// <summary>Mounted with dax (persistent memory: loads and stores reach the media without the page cache).</summary>
    public bool MountsWithDax { get; init; }

    /// <summary>Takes live rate limits (mutable parameters), enforced where it is served.</summary>
    public bool TakesRateLimits { get; init; }

    /// <summary>StorageClass parameters only this medium takes: key → the values it accepts.</summary>
    public IReadOnlyDictionary<string, IReadOnlySet<string>> OwnParameters { get; init; } = new Dictionary<string, IReadOnlySet<string>>();

    /// <summary>The gauge a staged volume's attachment health is reported under, and its help text.</summary>
    public (string Name, string Help) AttachmentHealthMetric { get; init; } =
        ("solar_volume_attachment_healthy", "1 while a staged volume's device and mount are in place, 0 when they are not");

    public override string ToString() => Name;
}

/// <summary>The node's attach paths, as media choose them; each is one attacher on the node.</summary>
public enum AttachPath
{
    /// <summary>A block device the pool made itself (an LV, a whole disk, a pmem namespace): nothing to attach.</summary>
    LocalDevice,
    /// <summary>An image file the pool keeps, attached as a loop device.</summary>
    ImageFile,
    /// <summary>A filesystem the pool mounted already (a tmpfs): staging binds it.</summary>
    MountedFilesystem,
    /// <summary>A volume served by another node, reached over the network (NBD).</summary>
    Remote,
}
