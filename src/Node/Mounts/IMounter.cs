namespace SolarCsi.Node.Mounts;

/// <summary>OS mount operations. The kernel's mount table is always re-read, never cached.</summary>
public interface IMounter
{
    Task<MountTable> ListAsync(CancellationToken ct);
    Task MountAsync(string source, string target, string? fsType, IReadOnlyList<string> options, CancellationToken ct);
    /// <summary>Changes options of the mount at <paramref name="target"/> in place (e.g. a tmpfs's size).</summary>
    Task RemountAsync(string target, IReadOnlyList<string> options, CancellationToken ct);
    Task BindAsync(string source, string target, bool readOnly, CancellationToken ct);
    /// <summary>Unmounts one layer at <paramref name="target"/>; retries while the kernel says busy.</summary>
    Task UnmountAsync(string target, CancellationToken ct);
}

public static class MounterExtensions
{
    /// <summary>
    /// Unmounts every layer at <paramref name="target"/> that is of <paramref name="device"/> (every layer, for null):
    /// mounts stack, and a retried operation must not take down what someone else mounted on top.
    /// </summary>
    public static async Task UnmountAllAsync(this IMounter mounter, string target, CancellationToken ct, string? device = null)
    {
        while ((await mounter.ListAsync(ct)).TopAt(target) is { } top && (device is null || top.Shows(device)))
            await mounter.UnmountAsync(target, ct);
    }
}
