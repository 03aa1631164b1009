using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Devices;
using SolarCsi.Core.Processes;
using SolarCsi.Node.Attach;

namespace SolarCsi.Tests.Node;

/// <summary>Real loop devices: needs root and /dev/loop-control, which this project's machines have.</summary>
public sealed class LoopDevicesTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly LoopDevices _loops = new(new ProcessRunner(NullLogger<ProcessRunner>.Instance));
    private readonly List<string> _attached = [];

    public void Dispose()
    {
        foreach (var device in _attached)
            try { _loops.DetachAsync(device, CancellationToken.None).GetAwaiter().GetResult(); } catch (CommandFailedException) { }
        _dir.Dispose();
    }

    [Fact]
    public async Task AttachFindsTheSameDeviceInsteadOfAttachingTwice()
    {
        var image = Path.Combine(_dir.Path, "v.img");
        await using (var f = File.Create(image)) f.SetLength(16 << 20);
        var attacher = new LoopFileAttacher(_loops);

        var device = await attacher.AttachAsync(image, readOnly: false, CancellationToken.None);
        _attached.Add(device);
        Assert.StartsWith("/dev/loop", device);
        Assert.Equal(device, await attacher.AttachAsync(image, readOnly: false, CancellationToken.None));
        Assert.Equal(device, await attacher.FindAttachedAsync(image, CancellationToken.None));
        Assert.Equal(16L << 20, new BlockDevices(new ProcessRunner(NullLogger<ProcessRunner>.Instance)).SizeOf(device));
        var listed = Assert.Single(await _loops.FindByBackingFileAsync(image, CancellationToken.None));
        Assert.True(listed.DirectIo);
        Assert.Equal(FileIdentity.InodeOf(image), listed.BackingInode);

        // A different file at the same path is not the device's file any more.
        File.Move(image, image + ".old");
        await using (var f = File.Create(image)) f.SetLength(16 << 20);
        Assert.Null(await attacher.FindAttachedAsync(image, CancellationToken.None));
        await attacher.DetachAsync(device, image, CancellationToken.None);
        Assert.Contains(await _loops.ListAsync(CancellationToken.None), d => d.Name == device);

        await _loops.DetachAsync(device, CancellationToken.None);
        _attached.Remove(device);
        Assert.DoesNotContain(await _loops.ListAsync(CancellationToken.None), d => d.Name == device);
    }
}
