using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Ids;
using SolarCsi.Node;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Processes;
using SolarCsi.Node.Staging;
using SolarCsi.Tests.Core;

namespace SolarCsi.Tests.Node.Staging;

/// <summary>
/// The node's staging parts wired as Program wires them, over a fake mount table and attach path, scripted host
/// tools (blkid, mkfs, dumpe2fs) and a real journal and file pool in a temp directory.
/// </summary>
internal sealed class StagingRig : IDisposable
{
    public const long DeviceBytes = 64L << 20;
    private readonly TempDir _dir = new();

    public FakeMounter Mounter { get; } = new();
    public FakeAttacher Attacher { get; }
    public ScriptedRunner Runner { get; }
    public NodeJournal Journal { get; }
    public AttacherSet Attachers { get; }
    public NodeReconciler Reconciler { get; }
    public string RemoteClientsDir => new NodeStateLayout(StateDir).RemoteClients;
    public LoopDevices Loops { get; }
    public string StateDir => Path.Combine(_dir.Path, "state");
    /// <summary>Where the volume's data is on this node (its pool's backing).</summary>
    public string SourcePath { get; }
    public VolumeStaging Staging { get; }
    public VolumePublishing Publishing { get; }
    public StagedVolumes Staged { get; }
    public string VolumeId { get; } = StorageId.ForVolume("file", "default", "n1", "data").ToString();
    /// <summary>What blkid says of the device: blank (exit 2) unless a test sets a filesystem.</summary>
    public string? FilesystemOnDevice { get; set; }
    /// <summary>What dumpe2fs says the ext4's size is.</summary>
    public long Ext4Bytes { get; set; } = DeviceBytes;
    public string KubeletDir => Path.Combine(_dir.Path, "kubelet");
    public string StagingPath => Path.Combine(KubeletDir, "plugins", "kubernetes.io", "csi", "solar", "stage", VolumeId);
    public string TargetPath(string pod = "pod-a") => Path.Combine(KubeletDir, "pods", pod, "volumes", "mount");

    public StagingRig(bool providesFilesystem = false)
    {
        Attacher = new FakeAttacher("loop", providesFilesystem);
        Runner = new ScriptedRunner(line => line switch
        {
            _ when line.StartsWith("blkid", StringComparison.Ordinal) =>
                FilesystemOnDevice is null ? new ProcessResult(2, "", "") : new ProcessResult(0, $"TYPE={FilesystemOnDevice}\n", ""),
            _ when line.StartsWith("losetup --list", StringComparison.Ordinal) => new ProcessResult(0, """{ "loopdevices": [] }""", ""),
            _ when line.StartsWith("dumpe2fs", StringComparison.Ordinal) => new ProcessResult(0, $"Block count: {Ext4Bytes / 4096}\nBlock size: 4096\n", ""),
            _ => new ProcessResult(0, "", ""),
        });
        var sysBlock = Path.Combine(_dir.Path, "sys-block");
        for (var i = 0; i < 4; i++)
        {
            Directory.CreateDirectory(Path.Combine(sysBlock, $"solar-fake{i}"));
            File.WriteAllText(Path.Combine(sysBlock, $"solar-fake{i}", "size"), $"{DeviceBytes / 512}\n");
        }
        var layout = new NodeStateLayout(StateDir);
        Loops = new LoopDevices(Runner, directListing: () => null);
        var pool = new FilePool("file", "default", layout.PoolDir("file", "default"), new CapacityLedger(_dir.Path, 1L << 30), [], Runner, Loops,
            (_, _) => Task.FromResult<IAsyncDisposable?>(null), NullLogger.Instance);
        pool.CreateVolumeAsync(VolumeId, "data", DeviceBytes, 0, new() { ["media"] = "file" }, null, CancellationToken.None).GetAwaiter().GetResult();
        SourcePath = pool.BackingPathOf(VolumeId);
        var pools = new PoolSet("n1", [pool]);
        Journal = new NodeJournal(layout.Journal);
        Attachers = new AttacherSet(Attacher, new FakeAttacher("nbd"), new FakeAttacher("tmpfs", providesFilesystem: true), new FakeAttacher("device"));
        var attachers = Attachers;
        var sources = new VolumeSources(pools, layout.RemoteClients);
        var devices = new BlockDevices(Runner, sysBlock);
        var filesystems = new Filesystems(Runner);
        Staging = new VolumeStaging(Journal, attachers, sources, Mounter,
            new StagedFilesystem(Mounter, devices, filesystems, NullLogger<StagedFilesystem>.Instance), NullLogger<VolumeStaging>.Instance);
        Publishing = new VolumePublishing(Journal, attachers, sources, Mounter, NullLogger<VolumePublishing>.Instance);
        Staged = new StagedVolumes(Journal, attachers, Mounter, devices, filesystems);
        Reconciler = new NodeReconciler(Journal, Staging, new SolarCsi.Core.Concurrency.InFlightTracker(), pools, Mounter, Loops, attachers, sources,
            NullLogger<NodeReconciler>.Instance);
    }

    public StageRequest Stage(bool block = false, string fsType = "ext4", string? stagingPath = null) =>
        new(VolumeId, stagingPath ?? StagingPath, block, fsType, [], new Dictionary<string, string>());

    /// <summary>Host tool runs and mount table changes so far, to show that a refused call did nothing.</summary>
    public string SideEffects => string.Join('\n', [.. Runner.Calls.Where(c => !c.StartsWith("blkid", StringComparison.Ordinal) && !c.StartsWith("dumpe2fs", StringComparison.Ordinal)),
        .. Mounter.Changes, $"attaches={Attacher.Attaches}", $"detaches={Attacher.Detaches.Count}"]);

    public void Dispose() => _dir.Dispose();
}
