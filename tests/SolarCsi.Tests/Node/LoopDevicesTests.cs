using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Errors;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Processes;

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
        Assert.Equal(FileIdentity.Of(image).Inode, listed.BackingInode);

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

    /// <summary>
    /// A device bound by a process whose mount namespace is gone — the node plugin's container restarted — reports its
    /// file by the path below the lost mount only ("/v.img"); it is still that file's device, and must be found as
    /// such, or a re-stage would bind a second device to the image and a delete would think it unused.
    /// </summary>
    [Fact]
    public async Task ADeviceBoundInAMountNamespaceThatIsGoneIsStillFoundByItsFile()
    {
        var image = Path.Combine(_dir.Path, "v.img");
        await using (var f = File.Create(image)) f.SetLength(16 << 20);
        var view = Directory.CreateDirectory(Path.Combine(_dir.Path, "container-view")).FullName;
        var bound = await new ProcessRunner(NullLogger<ProcessRunner>.Instance).RunAsync("unshare",
            ["--mount", "--propagation", "private", "sh", "-c", "mount --bind \"$1\" \"$2\" && exec losetup --find --show -- \"$2/v.img\"", "sh", _dir.Path, view],
            CancellationToken.None);
        var device = bound.StandardOutput.Trim();
        _attached.Add(device);

        var listed = Assert.Single(await _loops.ListAsync(CancellationToken.None), d => d.Name == device);
        Assert.Equal("/v.img", listed.BackingFile);
        Assert.Equal(device, Assert.Single(await _loops.FindByBackingFileAsync(image, CancellationToken.None)).Name);
        Assert.Equal(device, await new LoopFileAttacher(_loops).AttachAsync(image, readOnly: false, CancellationToken.None));
        var index = new BackingFileIndex<string>([(image, "vol-1")]);
        Assert.True(index.TryFind(listed, out var file, out var volume));
        Assert.Equal((image, "vol-1"), (file, volume));

        await _loops.DetachAsync(device, image, CancellationToken.None);
        _attached.Remove(device);
        Assert.Empty(await _loops.FindByBackingFileAsync(image, CancellationToken.None));
    }

    /// <summary>
    /// An ext4 made small (1 KiB blocks) on a volume attached from one filesystem must still mount when its image is
    /// attached from xfs, whose 4 KiB blocks a direct-I/O loop device would otherwise adopt as its sector size.
    /// </summary>
    [SkippableFact]
    public async Task AVolumesSectorSizeDoesNotDependOnTheFilesystemHoldingItsImage()
    {
        var why = XfsScratch.WhyUnavailable();
        Skip.If(why is not null, why);
        using var xfs = new XfsScratch(_dir.Path);
        var attacher = new LoopFileAttacher(_loops);
        var sizes = new List<string>();
        foreach (var dir in new[] { _dir.Path, xfs.Path })
        {
            var image = Path.Combine(dir, "geometry.img");
            await using (var f = File.Create(image)) f.SetLength(64 << 20);
            var device = await attacher.AttachAsync(image, readOnly: false, CancellationToken.None);
            _attached.Add(device);
            sizes.Add(File.ReadAllText($"/sys/block/{Path.GetFileName(device)}/queue/logical_block_size").Trim());
        }
        Assert.Equal(["512", "512"], sizes);
    }

    /// <summary>
    /// The direct reading (sysfs + LOOP_GET_STATUS64) must say exactly what losetup says, for every kind of binding
    /// the node meets: read-write with direct I/O, read-only, buffered, a backing file deleted or renamed while bound.
    /// </summary>
    [Fact]
    public async Task TheDirectReadingMatchesLosetup()
    {
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        async Task<string> AttachAsync(string name, params string[] extra)
        {
            var image = Path.Combine(_dir.Path, name);
            await using (var f = File.Create(image)) f.SetLength(4 << 20);
            var device = (await runner.RunAsync("losetup", ["--find", "--show", .. extra, "--", image], CancellationToken.None)).StandardOutput.Trim();
            _attached.Add(device);
            return image;
        }
        await AttachAsync("rw.img", "--direct-io=on");
        await AttachAsync("ro.img", "--read-only");
        await AttachAsync("buffered.img");
        File.Delete(await AttachAsync("deleted.img"));
        var renamed = await AttachAsync("renamed.img", "--direct-io=on");
        File.Move(renamed, renamed + ".moved");

        var direct = LoopStatus.TryList();
        Assert.NotNull(direct);
        var ours = direct.Where(d => _attached.Contains(d.Name)).OrderBy(d => d.Name).ToArray();
        var losetup = (await _loops.ListWithLosetupAsync(CancellationToken.None)).Where(d => _attached.Contains(d.Name)).OrderBy(d => d.Name).ToArray();
        Assert.Equal(5, losetup.Length);
        Assert.Equal(losetup, ours);
        Assert.Contains(ours, d => d.ReadOnly && d.BackingFile.EndsWith("ro.img", StringComparison.Ordinal));
        Assert.Contains(ours, d => !d.DirectIo && d.BackingFile.EndsWith("buffered.img", StringComparison.Ordinal));
        Assert.Contains(ours, d => d.BackingFile.EndsWith("renamed.img.moved", StringComparison.Ordinal) && d.BackingInode == FileIdentity.Of(renamed + ".moved").Inode);
    }

    /// <summary>
    /// Devices bound and unbound while the listing reads them must be skipped, not fail the listing: sysfs answers
    /// ENODEV for a device torn down mid-read (seen in bench-lifecycle with 100 volumes in flight).
    /// </summary>
    [Fact]
    public async Task ListingWhileDevicesComeAndGoNeverFails()
    {
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var image = Path.Combine(_dir.Path, "churn.img");
        await using (var f = File.Create(image)) f.SetLength(1 << 20);
        using var stop = new CancellationTokenSource();
        var listings = 0;
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                Assert.NotNull(LoopStatus.TryList());
                Interlocked.Increment(ref listings);
            }
        });
        for (var i = 0; i < 60; i++)
        {
            var device = (await runner.RunAsync("losetup", ["--find", "--show", "--", image], CancellationToken.None)).StandardOutput.Trim();
            _attached.Add(device);
            // A listing runs while this device is bound, whatever the machine's load (bounded, so a dead reader fails).
            var seen = Volatile.Read(ref listings);
            for (var wait = 0; Volatile.Read(ref listings) == seen && !reader.IsCompleted && wait < 500; wait++) await Task.Delay(10);
            await runner.RunAsync("losetup", ["--detach", device], CancellationToken.None);
            _attached.Remove(device);
        }
        await stop.CancelAsync();
        await reader;
        Assert.True(listings >= 60, $"only {listings} listings ran beside 60 attach/detach cycles");
    }

    [Theory]
    [InlineData(0xfe00UL, "254:0")]
    [InlineData(0x0701UL, "7:1")]
    [InlineData(0x100300UL, "3:256")] // minor above 255 lands in the high bits
    [InlineData(0x1000_0000_0000UL, "4096:0")]
    public void DeviceNumbersDecodeAsGlibcDoes(ulong dev, string expected) => Assert.Equal(expected, LoopStatus.MajorMinor(dev));
}
