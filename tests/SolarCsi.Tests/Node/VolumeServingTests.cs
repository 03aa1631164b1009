using SolarCsi.Node.Processes;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Serving;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.Tests.Node;

/// <summary>The agent asks a medium's serving instead of its name: remote media are registered, every other one is local.</summary>
public sealed class VolumeServingTests
{
    private static VolumeRecord Published(params PublicationRecord[] publications) =>
        VolumeRecord.New("nbd~default~n1~v000000000000000000000001", "v", 1 << 20, [], null) with { Publications = [.. publications] };

    [Fact]
    public void RemoteMediaServeThroughTheirExportAndLocalOnesServeNothing()
    {
        using var dir = new TempDir();
        var exports = new NbdExports(dir.Path, new NbdServerOptions("127.0.0.1", 10809, 10810),
            new DaemonLauncher(new ProcessRunner(Microsoft.Extensions.Logging.Abstractions.NullLogger<ProcessRunner>.Instance)),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<NbdExports>.Instance);
        var nbd = new NbdServing(exports, SolarCsi.Node.NodeOptions.Parse(new SolarCsi.Core.Hosting.CommandLine(
            ["--endpoint", "unix:///run/x.sock", "--node-id", "n1", "--state-dir", dir.Path], SolarCsi.Node.NodeOptions.Flags)));
        var set = new ServingSet(new Dictionary<string, IVolumeServing> { [VolumeParameters.NbdMedia] = nbd });
        Assert.Same(nbd, set.For(new FakePool(VolumeParameters.NbdMedia)));
        foreach (var media in new[] { "file", "tmpfs", "lvm", "disk", "pmem" })
            Assert.Same(LocalServing.Instance, set.For(new FakePool(media)));

        // A remote writer elsewhere makes an unfrozen snapshot torn; readers do not; a local medium never says so.
        var writer = Published(new PublicationRecord("n2", false, (int)AccessMode.SingleNodeWriter, false));
        Assert.Contains("n2", nbd.WhyUnfrozenSnapshotTears(writer));
        Assert.Null(nbd.WhyUnfrozenSnapshotTears(Published(new PublicationRecord("n2", false, (int)AccessMode.MultiNodeReaderOnly, false),
            new PublicationRecord("n3", true, (int)AccessMode.SingleNodeWriter, false))));
        Assert.Null(LocalServing.Instance.WhyUnfrozenSnapshotTears(writer));
        // A published volume whose export is not running is a problem the storage host can see.
        Assert.Contains("not running", nbd.ProblemOf(writer));
        Assert.Null(nbd.ProblemOf(Published()));
        Assert.False(nbd.Serves(writer.VolumeId));
    }

    private sealed class FakePool(string media) : IMediaPool
    {
        public string Name => "default";
        public string Media => media;
        public Agent.V1.PoolInfo Describe() => throw new NotSupportedException();
        public IReadOnlyList<string> RequiredTools => [];
        public IReadOnlyList<string> UnreadableVolumeNames() => [];
        public bool IsUnreadable(string volumeId) => false;
        public Task<VolumeRecord> CreateVolumeAsync(string volumeId, string name, long capacityBytes, long limitBytes, Dictionary<string, string> parameters,
            Agent.V1.ContentSource? source, CancellationToken ct) => throw new NotSupportedException();
        public Task DeleteVolumeAsync(string volumeId, CancellationToken ct) => throw new NotSupportedException();
        public VolumeRecord? GetVolume(string volumeId) => null;
        public IReadOnlyList<VolumeRecord> ListVolumes() => [];
        public Task<VolumeRecord> ExpandVolumeAsync(string volumeId, long capacityBytes, CancellationToken ct) => throw new NotSupportedException();
        public Task SaveVolumeAsync(VolumeRecord record, CancellationToken ct) => throw new NotSupportedException();
        public Task<SnapshotRecord> CreateSnapshotAsync(string snapshotId, string name, string sourceVolumeId, CancellationToken ct) => throw new NotSupportedException();
        public Task DeleteSnapshotAsync(string snapshotId, CancellationToken ct) => throw new NotSupportedException();
        public IReadOnlyList<SnapshotRecord> ListSnapshots() => [];
        public string BackingPathOf(string volumeId) => throw new NotSupportedException();
        public Task<string> PrepareBackingAsync(string volumeId, CancellationToken ct) => throw new NotSupportedException();
        public bool NodeExpansionRequired => true;
    }
}
