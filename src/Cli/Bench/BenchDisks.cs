using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Node.Processes;

namespace SolarCsi.Cli;

/// <summary>
/// Whole "disks" for the disk media's benches: sparse images behind loop devices, outside the cluster's directory (so
/// they are not counted as its leftovers), detached and deleted at the end.
/// </summary>
internal sealed class BenchDisks : IAsyncDisposable
{
    private static readonly IProcessRunner Runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
    private readonly string _dir = Directory.CreateTempSubdirectory("solar-bench-disks-").FullName;
    private readonly List<string> _devices = [];

    public IReadOnlyList<string> Devices => _devices;

    public static async Task<BenchDisks> CreateAsync(int count, long bytes)
    {
        var disks = new BenchDisks();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var image = Path.Combine(disks._dir, $"disk{i}.img");
                await using (var file = new FileStream(image, FileMode.CreateNew)) file.SetLength(bytes);
                var attached = await Runner.RunAsync("losetup", ["--find", "--show", "--", image], CancellationToken.None);
                disks._devices.Add(attached.StandardOutput.Trim());
            }
            return disks;
        }
        catch
        {
            await disks.DisposeAsync();
            throw;
        }
    }

    /// <summary>A disk pool named "default" over these devices (docs/local-media.md).</summary>
    public string PoolsConfig(long minBytes) =>
        $$"""{ "disk": [ { "name": "default", "paths": [ {{string.Join(", ", _devices.Select(d => $"\"{d}\""))}} ], "minSize": "{{minBytes}}" } ] }""";

    public async ValueTask DisposeAsync()
    {
        foreach (var device in _devices)
            await Runner.RunAsync("losetup", ["--detach", device], CancellationToken.None, okExitCodes: [0, 1]);
        Directory.Delete(_dir, recursive: true);
    }
}
