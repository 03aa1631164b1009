using SolarCsi.Core.Errors;
using SolarCsi.Node.Mounts;

namespace SolarCsi.Node.Attach;

/// <summary>
/// tmpfs volumes: the pool keeps each one mounted under its directory; "attached" means that mount exists, and
/// the device is its source name (unique per volume), which every bind of it shows in mountinfo.
/// </summary>
public sealed class TmpfsAttacher(IMounter mounter) : IBlockAttacher
{
    public string Kind => "tmpfs";
    public bool ProvidesFilesystem => true;

    public async Task<string?> FindAttachedAsync(string source, CancellationToken ct) =>
        (await mounter.ListAsync(ct)).TopAt(source) is { FsType: "tmpfs" } top ? top.Source : null;

    public async Task<string> AttachAsync(string source, bool readOnly, CancellationToken ct) =>
        await FindAttachedAsync(source, ct) ?? throw CsiErrors.FailedPrecondition($"the tmpfs at {source} is not mounted; the pool re-creates it at the next stage");

    // The tmpfs is the volume's data: it lives until the volume is deleted, not until it is unstaged.
    public Task DetachAsync(string device, string source, CancellationToken ct) => Task.CompletedTask;

    public Task RefreshCapacityAsync(string device, CancellationToken ct) => Task.CompletedTask;

    public async Task<string?> CheckAsync(string device, string source, CancellationToken ct) =>
        await FindAttachedAsync(source, ct) == device ? null : $"the tmpfs {device} is no longer mounted at {source}";
}
