namespace SolarCsi.Node.Attach;

/// <summary>
/// Turns a volume's backing (an image file, an NBD export, a local device) into a block device on this node, and back.
/// Every call re-reads the kernel's view; nothing is remembered between calls.
/// </summary>
public interface IBlockAttacher
{
    string Kind { get; }
    /// <summary>Host programs this attach path runs; a stage checks them first and names the missing package.</summary>
    IReadOnlyList<string> RequiredTools => [];
    /// <summary>
    /// The source is a mounted filesystem already (tmpfs): stage binds it to the staging path instead of probing,
    /// formatting and mounting a block device, and the "device" is the mount's source name.
    /// </summary>
    bool ProvidesFilesystem => false;
    /// <summary>The device already bound to exactly this source, if any.</summary>
    Task<string?> FindAttachedAsync(string source, CancellationToken ct);
    Task<string> AttachAsync(string source, bool readOnly, CancellationToken ct);
    /// <summary>Detaches <paramref name="device"/> only if it is still bound to <paramref name="source"/>.</summary>
    Task DetachAsync(string device, string source, CancellationToken ct);
    Task RefreshCapacityAsync(string device, CancellationToken ct);
    /// <summary>Null when the attachment works end to end, else what is broken (for VolumeCondition and re-stage).</summary>
    Task<string?> CheckAsync(string device, string source, CancellationToken ct);
}
