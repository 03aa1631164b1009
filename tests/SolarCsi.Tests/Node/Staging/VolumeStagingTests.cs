using Grpc.Core;
using SolarCsi.Node.Staging;

namespace SolarCsi.Tests.Node.Staging;

/// <summary>NodeStage and NodeUnstage on their own: journal, attach path and mount table as the kernel would have them.</summary>
public sealed class VolumeStagingTests : StagingRigTests
{

    [Fact]
    public async Task ABlankDeviceIsFormattedOnceAndMountedOnceHoweverOftenItIsStaged()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        _rig.FilesystemOnDevice = "ext4";
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);

        Assert.Single(_rig.Runner.Calls, c => c.StartsWith("mkfs.ext4", StringComparison.Ordinal));
        Assert.Equal(1, _rig.Attacher.Attaches);
        var entry = _rig.Journal.Get(_rig.VolumeId)!;
        Assert.Equal((StagePhase.Staged, true), (entry.Phase, entry.Formatted));
        Assert.True((await _rig.Mounter.ListAsync(Ct)).Holds(_rig.StagingPath, entry.Device!));
        Assert.Single(await _rig.Mounter.ListAsync(Ct));
    }

    [Fact]
    public async Task AFilesystemOfAnotherTypeIsNeitherFormattedNorMounted()
    {
        _rig.FilesystemOnDevice = "xfs";
        var e = await Assert.ThrowsAsync<RpcException>(() => _rig.Staging.StageAsync(_rig.Stage(fsType: "ext4"), Ct));

        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("holds a xfs filesystem, not ext4", e.Status.Detail);
        Assert.DoesNotContain(_rig.Runner.Calls, c => c.StartsWith("mkfs", StringComparison.Ordinal));
        Assert.Empty(await _rig.Mounter.ListAsync(Ct));
        Assert.Equal(StagePhase.Staging, _rig.Journal.Get(_rig.VolumeId)!.Phase);
    }

    [Fact]
    public async Task AnExt4SmallerThanItsDeviceIsGrownAndOneThatFillsItIsLeftAlone()
    {
        _rig.FilesystemOnDevice = "ext4";
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        Assert.DoesNotContain(_rig.Runner.Calls, c => c.StartsWith("resize2fs", StringComparison.Ordinal));
        await _rig.Staging.UnstageAsync(_rig.VolumeId, _rig.StagingPath, Ct);

        // Restored from a smaller snapshot, or expanded while detached.
        _rig.Ext4Bytes = StagingRig.DeviceBytes / 2;
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);

        var device = _rig.Journal.Get(_rig.VolumeId)!.Device!;
        Assert.Contains($"resize2fs {device}", _rig.Runner.Calls);
        Assert.DoesNotContain(_rig.Runner.Calls, c => c.StartsWith("mkfs", StringComparison.Ordinal));
        Assert.True((await _rig.Mounter.ListAsync(Ct)).Holds(_rig.StagingPath, device));
    }

    [Fact]
    public async Task StagingAtASecondPathOrWithAnotherCapabilityIsRefusedAndChangesNothing()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        var before = _rig.SideEffects;

        var elsewhere = await Assert.ThrowsAsync<RpcException>(() => _rig.Staging.StageAsync(_rig.Stage(stagingPath: _rig.StagingPath + "-2"), Ct));
        var asBlock = await Assert.ThrowsAsync<RpcException>(() => _rig.Staging.StageAsync(_rig.Stage(block: true), Ct));
        var asXfs = await Assert.ThrowsAsync<RpcException>(() => _rig.Staging.StageAsync(_rig.Stage(fsType: "xfs"), Ct));

        Assert.All([elsewhere, asBlock, asXfs], e => Assert.Equal(StatusCode.AlreadyExists, e.StatusCode));
        Assert.Equal(before, _rig.SideEffects);
        Assert.Equal(_rig.StagingPath, _rig.Journal.Get(_rig.VolumeId)!.StagingPath);
    }

    [Fact]
    public async Task AStagingPathHoldingSomethingElseIsNotMountedOver()
    {
        Directory.CreateDirectory(_rig.StagingPath);
        _rig.Mounter.Add("/dev/someone-else", _rig.StagingPath);

        var e = await Assert.ThrowsAsync<RpcException>(() => _rig.Staging.StageAsync(_rig.Stage(), Ct));

        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);
        Assert.Single(await _rig.Mounter.ListAsync(Ct));
        Assert.DoesNotContain(_rig.Runner.Calls, c => c.StartsWith("mkfs", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ABrokenAttachmentIsReattachedWhenNoPodUsesItAndRefusedWhileOneDoes()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        await _rig.Publishing.PublishAsync(_rig.VolumeId, _rig.StagingPath, _rig.TargetPath(), block: false, readOnly: false, Ct);
        _rig.Attacher.Problem = "the export went away";

        var refused = await Assert.ThrowsAsync<RpcException>(() => _rig.Staging.StageAsync(_rig.Stage(), Ct));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains(_rig.TargetPath(), refused.Status.Detail);
        Assert.Empty(_rig.Attacher.Detaches);

        await _rig.Publishing.UnpublishAsync(_rig.VolumeId, _rig.TargetPath(), Ct);
        var broken = _rig.Journal.Get(_rig.VolumeId)!.Device;
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);

        Assert.Equal([broken!], _rig.Attacher.Detaches);
        Assert.Equal(2, _rig.Attacher.Attaches);
        var entry = _rig.Journal.Get(_rig.VolumeId)!;
        Assert.NotEqual(broken, entry.Device);
        Assert.Equal(StagePhase.Staged, entry.Phase);
        Assert.True((await _rig.Mounter.ListAsync(Ct)).Holds(_rig.StagingPath, entry.Device!));
    }

    [Fact]
    public async Task UnstageTakesDownMountAndDeviceAndForgetsTheVolumeOnceAndAgainIsNothing()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        var device = _rig.Journal.Get(_rig.VolumeId)!.Device!;

        await _rig.Staging.UnstageAsync(_rig.VolumeId, _rig.StagingPath, Ct);
        var after = _rig.SideEffects;
        await _rig.Staging.UnstageAsync(_rig.VolumeId, _rig.StagingPath, Ct);

        Assert.Empty(await _rig.Mounter.ListAsync(Ct));
        Assert.Equal([device], _rig.Attacher.Detaches);
        Assert.Null(_rig.Journal.Get(_rig.VolumeId));
        Assert.Equal(after, _rig.SideEffects);
    }

    [Fact]
    public async Task UnstageWhilePublishedIsRefusedAndLeavesEverythingInPlace()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        await _rig.Publishing.PublishAsync(_rig.VolumeId, _rig.StagingPath, _rig.TargetPath(), block: false, readOnly: false, Ct);
        var before = _rig.SideEffects;

        var e = await Assert.ThrowsAsync<RpcException>(() => _rig.Staging.UnstageAsync(_rig.VolumeId, _rig.StagingPath, Ct));

        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("unpublish first", e.Status.Detail);
        Assert.Equal(before, _rig.SideEffects);
        Assert.Equal(StagePhase.Staged, _rig.Journal.Get(_rig.VolumeId)!.Phase);
    }

    [Fact]
    public async Task UnstageNeverUnmountsWhatIsNotTheVolumes()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        _rig.Mounter.Add("/dev/someone-else", _rig.StagingPath);
        var before = _rig.SideEffects;

        var e = await Assert.ThrowsAsync<RpcException>(() => _rig.Staging.UnstageAsync(_rig.VolumeId, _rig.StagingPath, Ct));

        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal(before, _rig.SideEffects);
        Assert.Equal(2, (await _rig.Mounter.ListAsync(Ct)).Count);
    }

    [Fact]
    public async Task UnstageOfAnotherPathLeavesTheStagedVolumeAlone()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        var before = _rig.SideEffects;

        await _rig.Staging.UnstageAsync(_rig.VolumeId, _rig.StagingPath + "-other", Ct);

        Assert.Equal(before, _rig.SideEffects);
        Assert.Equal(StagePhase.Staged, _rig.Journal.Get(_rig.VolumeId)!.Phase);
    }

    [Fact]
    public async Task UnstageAfterTheDeviceVanishedStillTakesDownItsMount()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        _rig.Attacher.Lose(_rig.Journal.Get(_rig.VolumeId)!.Source);

        await _rig.Staging.UnstageAsync(_rig.VolumeId, _rig.StagingPath, Ct);

        Assert.Empty(await _rig.Mounter.ListAsync(Ct));
        Assert.Null(_rig.Journal.Get(_rig.VolumeId));
    }

    [Fact]
    public async Task ABrokenAttachmentUnderSomeoneElsesMountIsNotDetached()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        _rig.Mounter.Add("/dev/someone-else", _rig.StagingPath);
        _rig.Attacher.Problem = "the export went away";

        var e = await Assert.ThrowsAsync<RpcException>(() => _rig.Staging.StageAsync(_rig.Stage(), Ct));

        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Empty(_rig.Attacher.Detaches);
        Assert.Equal(2, (await _rig.Mounter.ListAsync(Ct)).Count);
    }

    [Fact]
    public async Task ASourceThatIsAFilesystemAlreadyIsBoundNotProbedOrFormatted()
    {
        using var rig = new StagingRig(providesFilesystem: true);
        // The volume's home is a mount already (a tmpfs the pool mounted); its source name is the "device".
        rig.Mounter.Add("fake-fs-0", rig.SourcePath, "tmpfs");
        await rig.Staging.StageAsync(rig.Stage(fsType: "tmpfs"), Ct);
        await rig.Staging.StageAsync(rig.Stage(fsType: "tmpfs"), Ct);

        var entry = rig.Journal.Get(rig.VolumeId)!;
        Assert.Equal("fake-fs-0", entry.Device);
        Assert.Equal([$"bind {rig.SourcePath} {rig.StagingPath} rw"], rig.Mounter.Changes);
        Assert.DoesNotContain(rig.Runner.Calls, c => c.StartsWith("blkid", StringComparison.Ordinal) || c.StartsWith("mkfs", StringComparison.Ordinal));
        Assert.False(entry.Formatted);

        await rig.Staging.UnstageAsync(rig.VolumeId, rig.StagingPath, Ct);
        // The home mount is the volume, not a user of it: it stays; the staging bind goes.
        Assert.Equal([rig.SourcePath], (await rig.Mounter.ListAsync(Ct)).Select(m => m.MountPoint));
        Assert.Null(rig.Journal.Get(rig.VolumeId));
    }

    [Fact]
    public void EachMediumIsServedByTheAttachPathItNames()
    {
        var a = _rig.Attachers;
        Assert.Equal(["loop", "nbd", "tmpfs", "device", "device", "device"],
            new[] { "file", "nbd", "tmpfs", "lvm", "disk", "pmem" }.Select(m => a.ForMedia(m).Kind));
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => a.ForMedia("nvme")).StatusCode);
    }

    [Fact]
    public async Task ABlockStageAttachesWithoutProbingFormattingOrMounting()
    {
        await _rig.Staging.StageAsync(_rig.Stage(block: true), Ct);
        await _rig.Staging.StageAsync(_rig.Stage(block: true), Ct);

        Assert.Equal(1, _rig.Attacher.Attaches);
        Assert.DoesNotContain(_rig.Runner.Calls, c => c.StartsWith("blkid", StringComparison.Ordinal) || c.StartsWith("mkfs", StringComparison.Ordinal));
        Assert.Empty(await _rig.Mounter.ListAsync(Ct));
        Assert.Equal(StagePhase.Staged, _rig.Journal.Get(_rig.VolumeId)!.Phase);
    }
}
