using Grpc.Core;
using SolarCsi.Node.Staging;

namespace SolarCsi.Tests.Node.Staging;

/// <summary>NodePublish and NodeUnpublish on their own: binds of a staged volume into pods, and only of it.</summary>
public sealed class VolumePublishingTests : StagingRigTests
{

    private Task PublishAsync(string pod = "pod-a", bool readOnly = false, bool block = false) =>
        _rig.Publishing.PublishAsync(_rig.VolumeId, _rig.StagingPath, _rig.TargetPath(pod), block, readOnly, Ct);

    [Fact]
    public async Task PublishBindsTheStagedFilesystemOnceAndRecordsTheTarget()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        await PublishAsync();
        await PublishAsync();

        var entry = _rig.Journal.Get(_rig.VolumeId)!;
        Assert.Single(_rig.Mounter.Changes, c => c.StartsWith("bind", StringComparison.Ordinal));
        Assert.True((await _rig.Mounter.ListAsync(Ct)).Holds(_rig.TargetPath(), entry.Device!));
        Assert.Equal([_rig.TargetPath()], entry.Targets.Select(t => t.Path));
    }

    [Fact]
    public async Task ATargetPublishedReadWriteIsNotPublishedAgainReadOnly()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        await PublishAsync();
        var before = _rig.SideEffects;

        var e = await Assert.ThrowsAsync<RpcException>(() => PublishAsync(readOnly: true));

        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);
        Assert.Equal(before, _rig.SideEffects);
    }

    [Fact]
    public async Task NothingIsPublishedFromAVolumeThatIsNotStagedOrWhoseDeviceIsGone()
    {
        var notStaged = await Assert.ThrowsAsync<RpcException>(() => PublishAsync());
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        _rig.Attacher.Lose(_rig.Journal.Get(_rig.VolumeId)!.Source);
        var gone = await Assert.ThrowsAsync<RpcException>(() => PublishAsync());

        Assert.Equal(StatusCode.FailedPrecondition, notStaged.StatusCode);
        Assert.Equal(StatusCode.FailedPrecondition, gone.StatusCode);
        Assert.Contains("no longer attached", gone.Status.Detail);
        Assert.False(Path.Exists(_rig.TargetPath()));
        Assert.DoesNotContain(_rig.Mounter.Changes, c => c.StartsWith("bind", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnEmptyStagingDirectoryIsNeverHandedToAPod()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        // A failed unstage took the mount down but left the directory and the device.
        await _rig.Mounter.UnmountAsync(_rig.StagingPath, Ct);

        var e = await Assert.ThrowsAsync<RpcException>(() => PublishAsync());

        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("not a live mount", e.Status.Detail);
        Assert.DoesNotContain(_rig.Mounter.Changes, c => c.StartsWith("bind", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ARawBlockTargetIsAFileBindOfTheDeviceAndGoesAwayOnUnpublish()
    {
        await _rig.Staging.StageAsync(_rig.Stage(block: true), Ct);
        await PublishAsync(block: true);
        var device = _rig.Journal.Get(_rig.VolumeId)!.Device!;

        Assert.True(File.Exists(_rig.TargetPath()));
        Assert.True((await _rig.Mounter.ListAsync(Ct)).Holds(_rig.TargetPath(), device));

        await _rig.Publishing.UnpublishAsync(_rig.VolumeId, _rig.TargetPath(), Ct);
        Assert.False(Path.Exists(_rig.TargetPath()));
        Assert.Empty(await _rig.Mounter.ListAsync(Ct));
        Assert.Empty(_rig.Journal.Get(_rig.VolumeId)!.Targets);
    }

    [Fact]
    public async Task UnpublishRemovesTheBindAndItsDirectoryAndAgainIsNothing()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        await PublishAsync();

        await _rig.Publishing.UnpublishAsync(_rig.VolumeId, _rig.TargetPath(), Ct);
        var after = _rig.SideEffects;
        await _rig.Publishing.UnpublishAsync(_rig.VolumeId, _rig.TargetPath(), Ct);

        Assert.False(Directory.Exists(_rig.TargetPath()));
        Assert.Equal(after, _rig.SideEffects);
        Assert.Empty(_rig.Journal.Get(_rig.VolumeId)!.Targets);
        Assert.Single(await _rig.Mounter.ListAsync(Ct)); // the staging mount stays
    }

    [Fact]
    public async Task UnpublishLeavesAForeignMountAndLeftoverDataAlone()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        Directory.CreateDirectory(_rig.TargetPath("pod-b"));
        _rig.Mounter.Add("/dev/someone-else", _rig.TargetPath("pod-b"));
        Directory.CreateDirectory(_rig.TargetPath("pod-c"));
        await File.WriteAllTextAsync(Path.Combine(_rig.TargetPath("pod-c"), "not-ours"), "data", Ct);
        var before = _rig.SideEffects;

        var foreign = await Assert.ThrowsAsync<RpcException>(() => _rig.Publishing.UnpublishAsync(_rig.VolumeId, _rig.TargetPath("pod-b"), Ct));
        var leftover = await Assert.ThrowsAsync<RpcException>(() => _rig.Publishing.UnpublishAsync(_rig.VolumeId, _rig.TargetPath("pod-c"), Ct));

        Assert.Equal(StatusCode.FailedPrecondition, foreign.StatusCode);
        Assert.Equal(StatusCode.FailedPrecondition, leftover.StatusCode);
        Assert.Equal(before, _rig.SideEffects);
        Assert.True((await _rig.Mounter.ListAsync(Ct)).IsMountPoint(_rig.TargetPath("pod-b")));
        Assert.True(File.Exists(Path.Combine(_rig.TargetPath("pod-c"), "not-ours")));
    }
}
