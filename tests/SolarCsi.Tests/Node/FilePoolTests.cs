using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Node;

public sealed class FilePoolTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly TempDir _dir = new();
    private readonly List<string> _quiesced = [];
    private readonly FilePool _pool;
    /// <summary>Whether the fake node has the volume mounted (a quiesce then holds it) and what runs at its thaw.</summary>
    private bool _mounted;
    private Action? _atThaw;
    private int _held;

    public FilePoolTests() => _pool = NewPool();

    private FilePool NewPool(long capacity = 1024 * MiB, string? root = null, string media = "file")
    {
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        root ??= _dir.Path;
        return new FilePool(media, "default", root, new CapacityLedger(root, capacity), [], runner, new LoopDevices(runner), (id, _) =>
        {
            _quiesced.Add(id);
            if (!_mounted) return Task.FromResult<IAsyncDisposable?>(null);
            Interlocked.Increment(ref _held);
            return Task.FromResult<IAsyncDisposable?>(new Thaw(() => { Interlocked.Decrement(ref _held); _atThaw?.Invoke(); }));
        }, NullLogger.Instance);
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

    [SkippableFact]
    public async Task AVolumeInUseIsCutByReflinkWhileHeldAndWhatIsWrittenAfterTheThawStaysOut()
    {
        var why = XfsScratch.WhyUnavailable();
        Skip.If(why is not null, why);
        using var xfs = new XfsScratch(_dir.Path);
        var pool = NewPool(root: xfs.Path);
        var id = VolumeId("busy");
        await pool.CreateVolumeAsync(id, "busy", 64 * MiB, 0, new(), null, CancellationToken.None);
        WriteAt(pool.BackingPathOf(id), 40 * MiB, "hello");
        _mounted = true;
        // The application writes again the moment it is thawed: if the copy were still running then, it would take it.
        _atThaw = () => WriteAt(pool.BackingPathOf(id), 40 * MiB, "later");

        var snapId = StorageId.ForSnapshot("file", "default", "n1", "busy-snap").ToString();
        await pool.CreateSnapshotAsync(snapId, "busy-snap", id, CancellationToken.None);
        Assert.Equal(0, _held);
        var restored = VolumeId("busy-restored");
        await pool.CreateVolumeAsync(restored, "busy-restored", 64 * MiB, 0, new(), new ContentSource { SnapshotId = snapId }, CancellationToken.None);
        Assert.Equal("hello", ReadAt(pool.BackingPathOf(restored), 40 * MiB, 5));

        _atThaw = () => WriteAt(pool.BackingPathOf(id), 40 * MiB, "after");
        var clone = VolumeId("busy-clone");
        await pool.CreateVolumeAsync(clone, "busy-clone", 64 * MiB, 0, new(), new ContentSource { VolumeId = id }, CancellationToken.None);
        Assert.Equal("later", ReadAt(pool.BackingPathOf(clone), 40 * MiB, 5));
        Assert.Equal("after", ReadAt(pool.BackingPathOf(id), 40 * MiB, 5));
        Assert.Equal(0, _held);
    }

    [SkippableFact]
    public async Task AVolumeInUseOnAFilesystemThatCannotReflinkIsRefusedAndNothingIsLeft()
    {
        Skip.IfNot(Environment.UserName == "root", "mounting a tmpfs needs root");
        // tmpfs cannot share blocks between files, like ext4.
        using var tmpfs = new SmallTmpfs(Path.Combine(_dir.Path, "tmpfs"), "256m");
        var pool = NewPool(root: tmpfs.Path);
        var id = VolumeId("mounted");
        await pool.CreateVolumeAsync(id, "mounted", 16 * MiB, 0, new(), null, CancellationToken.None);
        _mounted = true;
        var snapId = StorageId.ForSnapshot("file", "default", "n1", "refused").ToString();
        var e = await Assert.ThrowsAsync<RpcException>(() => pool.CreateSnapshotAsync(snapId, "refused", id, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("reflink", e.Status.Detail);
        var clone = VolumeId("refused-clone");
        e = await Assert.ThrowsAsync<RpcException>(() =>
            pool.CreateVolumeAsync(clone, "refused-clone", 16 * MiB, 0, new(), new ContentSource { VolumeId = id }, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal(0, _held);
        Assert.Empty(pool.ListSnapshots());
        Assert.Empty(Directory.GetFiles(Path.Combine(tmpfs.Path, "snapshots")));
        Assert.Equal([id], pool.ListVolumes().Select(v => v.VolumeId));
        Assert.Equal(2, Directory.GetFiles(Path.Combine(tmpfs.Path, "volumes")).Length); // its image and record only

        // Not mounted any more: nothing can write while the agent holds its slot, so it is copied the long way.
        _mounted = false;
        await pool.CreateSnapshotAsync(snapId, "refused", id, CancellationToken.None);
        Assert.Single(pool.ListSnapshots());

        // An NBD volume attached read-write elsewhere is in use although nothing mounts it here.
        var nbd = NewPool(root: Path.Combine(tmpfs.Path, "nbd"), media: "nbd");
        var remote = StorageId.ForVolume("nbd", "default", "n1", "remote").ToString();
        var record = await nbd.CreateVolumeAsync(remote, "remote", 16 * MiB, 0, new(), null, CancellationToken.None);
        await nbd.SaveVolumeAsync(record with { Publications = [new PublicationRecord("n2", false, 1, false)] }, CancellationToken.None);
        e = await Assert.ThrowsAsync<RpcException>(() =>
            nbd.CreateSnapshotAsync(StorageId.ForSnapshot("nbd", "default", "n1", "r").ToString(), "r", remote, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("n2", e.Status.Detail);
        Assert.Empty(nbd.ListSnapshots());
    }

    /// <summary>One volume's snapshot holds that volume only: creates, expansions and other snapshots in the pool go on.</summary>
    [Fact]
    public async Task ASnapshotHeldUpDoesNotHoldUpThePool()
    {
        var slow = VolumeId("slow");
        var other = VolumeId("other");
        await _pool.CreateVolumeAsync(slow, "slow", 8 * MiB, 0, new(), null, CancellationToken.None);
        await _pool.CreateVolumeAsync(other, "other", 8 * MiB, 0, new(), null, CancellationToken.None);
        var entered = new TaskCompletionSource();
        var release = new TaskCompletionSource<IAsyncDisposable?>();
        var held = new FilePool("file", "default", _dir.Path, new CapacityLedger(_dir.Path, 1024 * MiB), [], new ProcessRunner(NullLogger<ProcessRunner>.Instance),
            new LoopDevices(new ProcessRunner(NullLogger<ProcessRunner>.Instance)), (id, _) =>
            {
                if (id != slow) return Task.FromResult<IAsyncDisposable?>(null);
                entered.TrySetResult();
                return release.Task;
            }, NullLogger.Instance);
        var stuck = held.CreateSnapshotAsync(StorageId.ForSnapshot("file", "default", "n1", "stuck").ToString(), "stuck", slow, CancellationToken.None);
        await entered.Task;

        // Bounded: a pool-wide lock would make these wait for ever, which must fail the test rather than hang it.
        var bound = TimeSpan.FromSeconds(30);
        await held.CreateVolumeAsync(VolumeId("meanwhile"), "meanwhile", 8 * MiB, 0, new(), null, CancellationToken.None).WaitAsync(bound);
        await held.ExpandVolumeAsync(other, 16 * MiB, CancellationToken.None).WaitAsync(bound);
        await held.CreateSnapshotAsync(StorageId.ForSnapshot("file", "default", "n1", "free").ToString(), "free", other, CancellationToken.None).WaitAsync(bound);
        Assert.False(stuck.IsCompleted);

        release.SetResult(null);
        await stuck;
        Assert.Equal(2, held.ListSnapshots().Count);
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

    private static void WriteAt(string path, long offset, string text)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(System.Text.Encoding.ASCII.GetBytes(text));
        f.Flush(flushToDisk: true);
    }

    private static string ReadAt(string path, long offset, int count)
    {
        using var f = File.OpenRead(path);
        f.Position = offset;
        var buffer = new byte[count];
        f.ReadExactly(buffer);
        return System.Text.Encoding.ASCII.GetString(buffer);
    }

    private sealed class Thaw(Action thawed) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            thawed();
            return ValueTask.CompletedTask;
        }
    }
}
