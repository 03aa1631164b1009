namespace SolarCsi.Core.Mounts;

/// <summary>OS mount operations. The kernel's mount table is always re-read, never cached.</summary>
public interface IMounter
{
    Task<IReadOnlyList<MountEntry>> ListAsync(CancellationToken ct);
    Task MountAsync(string source, string target, string? fsType, IReadOnlyList<string> options, CancellationToken ct);
    /// <summary>Changes options of the mount at <paramref name="target"/> in place (e.g. a tmpfs's size).</summary>
    Task RemountAsync(string target, IReadOnlyList<string> options, CancellationToken ct);
    Task BindAsync(string source, string target, bool readOnly, CancellationToken ct);
    /// <summary>Unmounts one layer at <paramref name="target"/>; retries while the kernel says busy.</summary>
    Task UnmountAsync(string target, CancellationToken ct);
}
