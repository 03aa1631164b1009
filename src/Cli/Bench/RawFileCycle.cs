namespace SolarCsi.Cli;

/// <summary>
/// A file volume without the driver: a sparse image of the same size on the same filesystem as the pool's, attached
/// as a direct-io loop device, formatted, mounted, bind-mounted into a "pod", and back.
/// </summary>
internal sealed class RawFileCycle(RawSteps os, string dir, long bytes, string fsType) : IStageCycle
{
    private string Image => Path.Combine(dir, "volume.img");
    private string Staging => Path.Combine(dir, "globalmount");
    private string Target => Path.Combine(dir, "pod", "mount");
    private string? _device;

    public async Task PrepareAsync()
    {
        Directory.CreateDirectory(Staging);
        Directory.CreateDirectory(Path.GetDirectoryName(Target)!);
        await using var image = File.Create(Image);
        image.SetLength(bytes);
    }

    public async Task StageAsync() => _device = await os.StageFileAsync(Image, Staging, fsType);

    public Task PublishAsync() => os.PublishAsync(Staging, Target);

    public Task UnpublishAsync() => os.UnpublishAsync(Target);

    public async Task UnstageAsync()
    {
        await os.UnstageDeviceAsync(Staging, _device!);
        _device = null;
    }

    public Task CleanUpAsync()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        return Task.CompletedTask;
    }
}
