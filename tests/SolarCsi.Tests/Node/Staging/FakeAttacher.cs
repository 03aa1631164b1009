using SolarCsi.Node.Attach;

namespace SolarCsi.Tests.Node.Staging;

/// <summary>An attach path that binds sources to made-up device names and can be told its attachment broke.</summary>
internal sealed class FakeAttacher(string kind, bool providesFilesystem = false) : IBlockAttacher
{
    private readonly Dictionary<string, string> _attached = new(StringComparer.Ordinal);
    private int _next;

    public string Kind => kind;
    public bool ProvidesFilesystem => providesFilesystem;
    public int Attaches { get; private set; }
    public List<string> Detaches { get; } = [];
    /// <summary>What <see cref="CheckAsync"/> reports (null: the attachment works).</summary>
    public string? Problem { get; set; }

    public Task<string?> FindAttachedAsync(string source, CancellationToken ct) =>
        Task.FromResult(_attached.TryGetValue(source, out var device) ? device : null);

    public Task<string> AttachAsync(string source, bool readOnly, CancellationToken ct)
    {
        if (!_attached.TryGetValue(source, out var device))
        {
            device = providesFilesystem ? "fake-fs-" + _next++ : $"/dev/solar-fake{_next++}";
            _attached[source] = device;
            Attaches++;
        }
        return Task.FromResult(device);
    }

    public Task DetachAsync(string device, string source, CancellationToken ct)
    {
        if (_attached.TryGetValue(source, out var bound) && (device == "" || bound == device))
        {
            _attached.Remove(source);
            Detaches.Add(bound);
        }
        return Task.CompletedTask;
    }

    /// <summary>The device goes away behind the plugin's back (a reboot, a helper that died).</summary>
    public void Lose(string source) => _attached.Remove(source);

    public Task RefreshCapacityAsync(string device, CancellationToken ct) => Task.CompletedTask;

    public Task<string?> CheckAsync(string device, string source, CancellationToken ct) => Task.FromResult(Problem);
}
