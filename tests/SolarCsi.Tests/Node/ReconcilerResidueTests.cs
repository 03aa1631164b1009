using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Ids;
using SolarCsi.Node;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Processes;
using SolarCsi.Node.Staging;
using SolarCsi.Tests.Core;

namespace SolarCsi.Tests.Node;

/// <summary>
/// The reconciler detaches loop devices over our images that no journal entry explains. Its listing of loop devices
/// is a moment old when it acts: a device unstaged since then may already serve another volume's stage, and
/// detaching it by name would pull the device from under that stage (seen in bench-lifecycle with 100 volumes in
/// flight: "device /dev/loopN reports size 0"). Scripted losetup answers stand in for the kernel.
/// </summary>
public sealed class ReconcilerResidueTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public async Task DetachesOnlyADeviceStillBoundToTheVolumesImage(bool stillBound, bool detached)
    {
        var listings = 0;
        string image = "";
        string Listing(string file) => $$"""{ "loopdevices": [ { "name": "/dev/loop7", "back-file": "{{file}}" } ] }""";
        var runner = new ScriptedRunner(line =>
            line.StartsWith("losetup --list", StringComparison.Ordinal)
                // The reconciler's listing, then its check under the volume's slot.
                ? new ProcessResult(0, Listing(++listings == 1 || stillBound ? image : "/elsewhere/another-volume.img"), "")
                : new ProcessResult(0, "", ""));
        var loops = new LoopDevices(runner, directListing: () => null);
        var mountInfo = Path.Combine(_dir.Path, "mountinfo");
        await File.WriteAllTextAsync(mountInfo, "");
        var mounter = new LinuxMounter(runner, mountInfo);
        var pool = new FilePool("file", "default", Path.Combine(_dir.Path, "pool"), new CapacityLedger(_dir.Path, 1L << 30), [], runner, loops,
            (_, _) => Task.FromResult<IAsyncDisposable?>(null), NullLogger.Instance);
        var volumeId = StorageId.ForVolume("file", "default", "n1", "gone").ToString();
        await pool.CreateVolumeAsync(volumeId, "gone", 64L << 20, 0, new() { ["media"] = "file" }, null, CancellationToken.None);
        image = pool.BackingPathOf(volumeId);
        var pools = new PoolSet("n1", [pool]);
        var journal = new NodeJournal(new NodeStateLayout(_dir.Path).Journal);
        var nbdRoot = new NodeStateLayout(_dir.Path).RemoteClients;
        var attachers = new AttacherSet(new LoopFileAttacher(loops),
            new NbdFuseAttacher(loops, mounter, runner, new DaemonLauncher(runner), NullLogger<NbdFuseAttacher>.Instance),
            new TmpfsAttacher(mounter), new LocalDeviceAttacher());
        var sources = new VolumeSources(pools, nbdRoot);
        var staging = new VolumeStaging(journal, attachers, sources, mounter,
            new StagedFilesystem(mounter, new BlockDevices(runner), new Filesystems(runner), NullLogger<StagedFilesystem>.Instance),
            NullLogger<VolumeStaging>.Instance);
        var reconciler = new NodeReconciler(journal, staging, new InFlightTracker(), pools, mounter, loops, attachers, sources,
            NullLogger<NodeReconciler>.Instance);

        await reconciler.RunAsync(CancellationToken.None);

        Assert.Equal(detached, runner.Calls.Contains("losetup --detach /dev/loop7"));
    }

}
