using Csi.V1;
using SolarCsi.Core.Errors;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.Core.Validation;

/// <summary>What a medium can serve, and the checks every RPC applies to volume capabilities.</summary>
public sealed record CapabilityRules(IReadOnlySet<AccessMode> AccessModes, IReadOnlySet<string> FsTypes, bool Block, string DefaultFsType = "ext4")
{

    public static readonly CapabilityRules LocalFile = new(
        new HashSet<AccessMode>
        {
            AccessMode.SingleNodeWriter, AccessMode.SingleNodeReaderOnly,
            AccessMode.SingleNodeSingleWriter, AccessMode.SingleNodeMultiWriter,
        },
        new HashSet<string>(StringComparer.Ordinal) { "ext4", "xfs" },
        Block: true);

    /// <summary>Remote block over NBD: one writer (fenced at the export) or many read-only readers.</summary>
    public static readonly CapabilityRules Nbd = new(
        new HashSet<AccessMode>
        {
            AccessMode.SingleNodeWriter, AccessMode.SingleNodeSingleWriter, AccessMode.SingleNodeReaderOnly, AccessMode.MultiNodeReaderOnly,
        },
        new HashSet<string>(StringComparer.Ordinal) { "ext4", "xfs" },
        Block: true);

    /// <summary>A size-limited tmpfs: a filesystem already, so neither raw block nor another fs_type.</summary>
    public static readonly CapabilityRules Tmpfs = new(
        LocalFile.AccessModes,
        new HashSet<string>(StringComparer.Ordinal) { "tmpfs" },
        Block: false,
        DefaultFsType: "tmpfs");

    /// <summary>The rules of the medium <paramref name="media"/> names (<see cref="Media.MediaCatalog"/>).</summary>
    public static CapabilityRules For(string media) => Media.MediaCatalog.Of(media).Capabilities;

    /// <summary>Throws InvalidArgument for a missing or malformed list.</summary>
    public static void RequireWellFormed(IReadOnlyCollection<VolumeCapability> capabilities, string field = "volume_capabilities")
    {
        if (capabilities.Count == 0) throw CsiErrors.InvalidArgument($"{field} is required");
        foreach (var cap in capabilities) RequireWellFormed(cap, field);
    }

    public static void RequireWellFormed(VolumeCapability? cap, string field = "volume_capability")
    {
        if (cap is null) throw CsiErrors.InvalidArgument($"{field} is required");
        if (cap.AccessTypeCase == VolumeCapability.AccessTypeOneofCase.None)
            throw CsiErrors.InvalidArgument($"{field}: access_type (mount or block) is required");
        if (cap.AccessMode is null || cap.AccessMode.Mode == AccessMode.Unknown)
            throw CsiErrors.InvalidArgument($"{field}: access_mode is required");
        if (cap.Mount is { } mount)
        {
            if (mount.MountFlags.Sum(f => f.Length) > 4096)
                throw CsiErrors.InvalidArgument($"{field}: mount_flags exceed 4 KiB");
            foreach (var flag in mount.MountFlags)
                if (flag.Length == 0 || flag.Any(c => char.IsControl(c) || c == ' '))
                    throw CsiErrors.InvalidArgument($"{field}: mount flag '{flag}' is malformed");
        }
    }

    /// <summary>Null when supported, else the reason.</summary>
    public string? WhyUnsupported(VolumeCapability cap)
    {
        if (!AccessModes.Contains(cap.AccessMode.Mode))
            return $"access mode {cap.AccessMode.Mode} is not supported";
        if (cap.Block is not null && !Block)
            return "raw block volumes are not supported";
        if (cap.Mount is { } mount && mount.FsType.Length > 0 && !FsTypes.Contains(mount.FsType))
            return $"fs_type '{mount.FsType}' is not supported (supported: {string.Join(", ", FsTypes)})";
        return null;
    }

    public void RequireSupported(IEnumerable<VolumeCapability> caps)
    {
        foreach (var cap in caps)
            if (WhyUnsupported(cap) is { } why) throw CsiErrors.InvalidArgument(why);
    }

    public string FsTypeOf(VolumeCapability cap) =>
        cap.Mount is { FsType.Length: > 0 } m ? m.FsType : DefaultFsType;
}
