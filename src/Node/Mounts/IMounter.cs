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
    /// Unmounts the layers at <paramref name="target"/> that are of <paramref name="device"/>, top down, and stops at
    /// the first that is not: mounts stack, and nothing may take down what someone else mounted on top. True when none
    /// of <paramref name="device"/> is left there; false when a layer of it is still under someone else's.
    /// </summary>
    /// <param name="current">the table as the caller just read it (under the volume's slot), to spare a re-read.</param>
    public static async Task<bool> UnmountAllOfAsync(this IMounter mounter, string target, string device, CancellationToken ct, MountTable? current = null)
    {
        var mounts = current ?? await mounter.ListAsync(ct);
        while (mounts.TopAt(target) is { } top && top.Shows(device))
        {
            await mounter.UnmountAsync(target, ct);
            mounts = await mounter.ListAsync(ct);
        }
        return !mounts.Holds(target, device);
    }
}
