using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Devices;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Processes;
using SolarCsi.Node.Pools;

namespace SolarCsi.Tests.Node;

public sealed class FilePoolTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly TempDir _dir = new();
    private readonly List<string> _quiesced = [];
    private readonly FilePool _pool;

    public FilePoolTests() => _pool = NewPool();

    private FilePool NewPool(long capacity = 1024 * MiB)
    {
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        return new FilePool("file", "default", _dir.Path, new CapacityLedger(_dir.Path, capacity), [], runner, new LoopDevices(runner),
            (id, _) => { _quiesced.Add(id); return Task.FromResult<IAsyncDisposable>(new Released()); }, NullLogger.Instance);
    }

    private static string VolumeId(string name) => StorageId.ForVolume("file", "default", "n1", name).ToString();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task CreateIsIdempotentAndSparse()
    {
        var id = VolumeId("a");
        var first = await _pool.CreateVolumeAsync(id, "a", 64 * MiB, 0, new() { ["media"] = "file" }, null, CancellationToken.None);
        var again = await _pool.CreateVolumeAsync(id, "a", 64 * MiB, 0, new() { ["media"] = "file" }, null, CancellationToken.None);
        Assert.Equal((first.VolumeId, first.Created, first.CapacityBytes), (again.VolumeId, again.Created, again.CapacityBytes));
        var image = new FileInfo(_pool.BackingPathOf(id));
        Assert.Equal(64 * MiB, image.Length);
        Assert.Equal(960 * MiB, _pool.Describe().FreeBytes);
        Assert.Equal("a", _pool.GetVolume(id)!.Name);
    }

    [Fact]
    public async Task RefusesWhatDoesNotFit()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => _pool.CreateVolumeAsync(VolumeId("big"), "big", 2048 * MiB, 0, new(), null, CancellationToken.None));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "volumes")));
    }

    [Fact]
    public async Task SnapshotsAndClonesCarryTheBytes()
    {
        var id = VolumeId("src");
        await _pool.CreateVolumeAsync(id, "src", 8 * MiB, 0, new(), null, CancellationToken.None);
        await using (var f = new FileStream(_pool.BackingPathOf(id), FileMode.Open, FileAccess.Write)) { f.Position = 4 * MiB; f.Write("hello"u8); }

        var snapId = StorageId.ForSnapshot("file", "default", "n1", "snap").ToString();
        var snap = await _pool.CreateSnapshotAsync(snapId, "snap", id, CancellationToken.None);
        Assert.Equal([id], _quiesced);
        Assert.Equal(8 * MiB, snap.SizeBytes);

        await using (var f = new FileStream(_pool.BackingPathOf(id), FileMode.Open, FileAccess.Write)) { f.Position = 4 * MiB; f.Write("later"u8); }

        var restored = VolumeId("restored");
        await _pool.CreateVolumeAsync(restored, "restored", 16 * MiB, 0, new(), new ContentSource { SnapshotId = snapId }, CancellationToken.None);
        Assert.Equal("hello", ReadAt(_pool.BackingPathOf(restored), 4 * MiB, 5));
        Assert.Equal(16 * MiB, new FileInfo(_pool.BackingPathOf(restored)).Length);

        var clone = VolumeId("clone");
        await _pool.CreateVolumeAsync(clone, "clone", 8 * MiB, 0, new(), new ContentSource { VolumeId = id }, CancellationToken.None);
        Assert.Equal("later", ReadAt(_pool.BackingPathOf(clone), 4 * MiB, 5));

        var tooSmall = await Assert.ThrowsAsync<RpcException>(() =>
            _pool.CreateVolumeAsync(VolumeId("small"), "small", 4 * MiB, 0, new(), new ContentSource { VolumeId = id }, CancellationToken.None));
        Assert.Equal(StatusCode.OutOfRange, tooSmall.StatusCode);

        await _pool.DeleteSnapshotAsync(snapId, CancellationToken.None);
        Assert.Empty(_pool.ListSnapshots());
    }

    [Fact]
    public async Task ExpandGrowsAndNeverShrinks()
    {
        var id = VolumeId("grow");
        await _pool.CreateVolumeAsync(id, "grow", 8 * MiB, 0, new(), null, CancellationToken.None);
        Assert.Equal(16 * MiB, (await _pool.ExpandVolumeAsync(id, 16 * MiB, CancellationToken.None)).CapacityBytes);
        Assert.Equal(16 * MiB, (await _pool.ExpandVolumeAsync(id, 4 * MiB, CancellationToken.None)).CapacityBytes);
        Assert.Equal(16 * MiB, new FileInfo(_pool.BackingPathOf(id)).Length);
    }

    [Fact]
    public async Task DeleteRefusesPublishedVolumesAndIsIdempotent()
    {
        var id = VolumeId("pub");
        var record = await _pool.CreateVolumeAsync(id, "pub", 8 * MiB, 0, new(), null, CancellationToken.None);
        await _pool.SaveVolumeAsync(record with { Publications = [new PublicationRecord("n1", false, 1, false)] }, CancellationToken.None);
        Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<RpcException>(() => _pool.DeleteVolumeAsync(id, CancellationToken.None))).StatusCode);
        await _pool.SaveVolumeAsync(record, CancellationToken.None);
        await _pool.DeleteVolumeAsync(id, CancellationToken.None);
        await _pool.DeleteVolumeAsync(id, CancellationToken.None);
        Assert.Null(_pool.GetVolume(id));
        Assert.False(File.Exists(_pool.BackingPathOf(id)));
    }

    [Fact]
    public async Task StartupRemovesTempFilesButKeepsImagesWithoutARecord()
    {
        var id = VolumeId("kept");
        await _pool.CreateVolumeAsync(id, "kept", 8 * MiB, 0, new(), null, CancellationToken.None);
        var volumes = Path.Combine(_dir.Path, "volumes");
        File.WriteAllText(Path.Combine(volumes, "vdeadbeefdeadbeefdeadbeef.img"), "orphan");
        File.WriteAllText(Path.Combine(volumes, "vdeadbeefdeadbeefdeadbee0.img.creating"), "half");
        var restarted = NewPool();
        Assert.Equal([id], restarted.ListVolumes().Select(v => v.VolumeId));
        // The unrecorded image may be the only copy of a volume whose record was lost: kept (solar cleanup lists it).
        var name = PoolRecords.NameOf(id);
        Assert.Equal(new[] { "vdeadbeefdeadbeefdeadbeef.img", name + ".img", name + ".json" }.Order(StringComparer.Ordinal),
            Directory.GetFiles(volumes).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    private static string ReadAt(string path, long offset, int count)
    {
        using var f = File.OpenRead(path);
        f.Position = offset;
        var buffer = new byte[count];
        f.ReadExactly(buffer);
        return System.Text.Encoding.ASCII.GetString(buffer);
    }

    private sealed class Released : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
