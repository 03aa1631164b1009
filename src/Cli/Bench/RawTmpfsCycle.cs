namespace SolarCsi.Cli;

/// <summary>
/// A tmpfs volume without the driver. As with the tmpfs pool, the tmpfs itself is made when the volume is created
/// (untimed here, as CreateVolume is); staging binds it to the staging path, publishing binds that into the pod.
/// </summary>
internal sealed class RawTmpfsCycle(RawSteps os, string dir, string source, long bytes) : IStageCycle
{
    private string Home => Path.Combine(dir, "tmpfs");
    private string Staging => Path.Combine(dir, "globalmount");
    private string Target => Path.Combine(dir, "pod", "mount");

    public async Task PrepareAsync()
    {
        Directory.CreateDirectory(Home);
        Directory.CreateDirectory(Staging);
        Directory.CreateDirectory(Path.GetDirectoryName(Target)!);
        await os.MountTmpfsAsync(source, Home, bytes);
    }

    public Task StageAsync() => os.BindAsync(Home, Staging);

    public Task PublishAsync() => os.PublishAsync(Staging, Target);

    public Task UnpublishAsync() => os.UnpublishAsync(Target);

    public Task UnstageAsync() => os.UnmountAsync(Staging);

    public async Task CleanUpAsync()
    {
        await os.UnmountAsync(Home);
        Directory.Delete(dir, recursive: true);
    }
}
