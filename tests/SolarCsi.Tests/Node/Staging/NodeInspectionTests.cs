using SolarCsi.Node.Inspection;
using SolarCsi.Node.Staging;

namespace SolarCsi.Tests.Node.Staging;

/// <summary>
/// `solar node-state` asks each volume's own attach path whether it is attached, as the plugin does: a volume whose
/// device went away is reported, whatever its attach path (it used to look attached unless it was a loop device).
/// </summary>
public sealed class NodeInspectionTests : StagingRigTests
{

    private Task<NodeReport> InspectAsync() => new NodeInspection(_rig.Mounter, _rig.Loops, _rig.Attachers).InspectAsync(_rig.StateDir, Ct);

    [Fact]
    public async Task AStagedVolumeIsReportedAttachedAndMountedWithNothingToSay()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);

        var report = await InspectAsync();

        var volume = Assert.Single(report.Volumes);
        Assert.Equal((_rig.VolumeId, true, true), (volume.VolumeId, volume.DeviceAttached, volume.StagingMounted));
        Assert.Empty(report.Findings);
    }

    [Fact]
    public async Task AVolumeWhoseAttachPathLostItsDeviceIsReportedGone()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        _rig.Attacher.Lose(_rig.Journal.Get(_rig.VolumeId)!.Source);

        var report = await InspectAsync();

        Assert.False(Assert.Single(report.Volumes).DeviceAttached);
        Assert.Equal("device-gone", Assert.Single(report.Findings).Kind);
    }

    [Theory]
    [InlineData("nbd")]
    [InlineData("device")]
    public async Task ADeviceGoneFromAnAttachPathOtherThanLoopIsReportedGoneToo(string kind)
    {
        // The plugin staged it through this attach path; since then the device went away (a reboot, a dead helper).
        await _rig.Journal.SaveAsync(new JournalEntry(_rig.VolumeId, StagePhase.Staged, _rig.StagingPath, kind, "/var/lib/solar-csi/node/nbd/x",
            "/dev/nbd3", false, "ext4", false, false, [], []), Ct);

        var report = await InspectAsync();

        Assert.False(Assert.Single(report.Volumes).DeviceAttached);
        Assert.Equal("device-gone", Assert.Single(report.Findings).Kind);
    }

    [Fact]
    public async Task AnAttachPathThisHostDoesNotRunIsSaidAndTheReportGoesOn()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        await _rig.Journal.SaveAsync(new JournalEntry("nbd~default~n2~v000000000000000000000009", StagePhase.Staged, _rig.StagingPath + "-2",
            "nbdfuse-elsewhere", "/x", "/dev/loop9", true, "", false, false, [], []), Ct);

        var report = await InspectAsync();

        Assert.Equal(2, report.Volumes.Count);
        var finding = Assert.Single(report.Findings);
        Assert.Equal(("attachment-unreadable", "nbd~default~n2~v000000000000000000000009"), (finding.Kind, finding.VolumeId));
        Assert.Contains("nbdfuse-elsewhere", finding.Detail);
    }

    [Fact]
    public async Task AStagingMountTakenDownBehindThePluginsBackIsReported()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        await _rig.Mounter.UnmountAsync(_rig.StagingPath, Ct);

        var report = await InspectAsync();

        Assert.False(Assert.Single(report.Volumes).StagingMounted);
        Assert.Equal("staging-not-mounted", Assert.Single(report.Findings).Kind);
    }
}

/// <summary>The reconciler removes a remote volume's client directory that no journal entry explains, through that medium's attach path.</summary>
public sealed class RemoteResidueTests : StagingRigTests
{
    private static readonly string Remote = SolarCsi.Core.Ids.StorageId.ForVolume("nbd", "default", "n2", "left").ToString();

    private async Task<(string Dir, string Device)> LeftBehindAsync()
    {
        var dir = Path.Combine(_rig.RemoteClientsDir, Remote);
        Directory.CreateDirectory(dir);
        return (dir, await _rig.Attachers.ForMedia("nbd").AttachAsync(dir, readOnly: false, Ct));
    }

    [Fact]
    public async Task AnUnexplainedAttachmentNothingMountsIsDetachedAndItsDirectoryGoes()
    {
        var (dir, device) = await LeftBehindAsync();

        await _rig.Reconciler.RunAsync(Ct);

        Assert.Null(await _rig.Attachers.ForMedia("nbd").FindAttachedAsync(dir, Ct));
        Assert.False(Directory.Exists(dir));
        Assert.Equal([device], ((FakeAttacher)_rig.Attachers.ForMedia("nbd")).Detaches);
    }

    [Fact]
    public async Task AnUnexplainedAttachmentThatIsMountedIsLeftAlone()
    {
        var (dir, device) = await LeftBehindAsync();
        var somewhere = Path.Combine(_rig.KubeletDir, "somewhere");
        Directory.CreateDirectory(somewhere);
        _rig.Mounter.Add(device, somewhere);

        await _rig.Reconciler.RunAsync(Ct);

        Assert.Equal(device, await _rig.Attachers.ForMedia("nbd").FindAttachedAsync(dir, Ct));
        Assert.True(Directory.Exists(dir));
    }
}
