using SolarCsi.Core.Errors;
using SolarCsi.Node.Devices;

namespace SolarCsi.Node.Attach;

/// <summary>Image files attached as loop devices.</summary>
public sealed class LoopFileAttacher(LoopDevices loops) : IBlockAttacher
{
    public string Kind => "loop";
    public IReadOnlyList<string> RequiredTools { get; } = ["losetup"];

    public async Task<string?> FindAttachedAsync(string source, CancellationToken ct)
    {
        var bound = await loops.FindByBackingFileAsync(source, ct);
        if (bound.Count > 1)
            throw CsiErrors.Internal($"{source} is attached more than once ({string.Join(", ", bound.Select(b => b.Name))}); refusing to guess");
        return bound.Count == 1 ? bound[0].Name : null;
    }

    public async Task<string> AttachAsync(string source, bool readOnly, CancellationToken ct)
    {
        if (!File.Exists(source)) throw CsiErrors.NotFound($"backing file {source} does not exist");
        // Never attach one volume twice: a second device over the same file would bypass every guard.
        return await FindAttachedAsync(source, ct) ?? await loops.AttachAsync(source, readOnly, ct);
    }

    public async Task DetachAsync(string device, string source, CancellationToken ct)
    {
        var bound = await loops.FindByBackingFileAsync(source, ct);
        if (bound.Any(b => b.Name == device)) await loops.DetachAsync(device, source, ct);
    }

    public Task RefreshCapacityAsync(string device, CancellationToken ct) => loops.RefreshCapacityAsync(device, ct);

    public async Task<string?> CheckAsync(string device, string source, CancellationToken ct) =>
        !File.Exists(source) ? $"backing file {source} is gone"
        : await FindAttachedAsync(source, ct) != device ? $"{device} is no longer bound to {source}"
        : null;
}
