namespace SolarCsi.Cli;

/// <summary>
/// One volume's node life, in the four steps the overhead bench times. Prepare and clean up are not timed: they
/// stand for the controller's part (a blank volume exists and is published to the node) and its removal.
/// </summary>
internal interface IStageCycle
{
    Task PrepareAsync();
    Task StageAsync();
    Task PublishAsync();
    Task UnpublishAsync();
    Task UnstageAsync();
    Task CleanUpAsync();
}

/// <summary>The driver's side: the four node calls over the plugin's socket.</summary>
internal sealed class DriverCycle(DriverVolume volume) : IStageCycle
{
    public async Task PrepareAsync()
    {
        await volume.CreateAsync();
        await volume.ControllerPublishAsync();
    }

    public Task StageAsync() => volume.StageAsync();
    public Task PublishAsync() => volume.PublishAsync();
    public Task UnpublishAsync() => volume.UnpublishAsync();
    public Task UnstageAsync() => volume.UnstageAsync();

    public async Task CleanUpAsync()
    {
        if (volume.VolumeId.Length == 0) return;
        await volume.ControllerUnpublishAsync();
        await volume.DeleteAsync();
    }
}
