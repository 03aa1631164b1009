using Grpc.Core;

namespace SolarCsi.Tests.Node.Staging;

/// <summary>What is asked of a staged volume: where it is, whether it works, and growing it.</summary>
public sealed class StagedVolumesTests : StagingRigTests
{

    [Fact]
    public async Task AVolumeIsFoundOnlyWhereItIsStagedOrPublished()
    {
        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => _rig.Staged.RequireStagedAt(_rig.VolumeId, _rig.StagingPath)).StatusCode);
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);

        Assert.Equal(_rig.VolumeId, _rig.Staged.RequireStagedAt(_rig.VolumeId, _rig.StagingPath).VolumeId);
        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => _rig.Staged.RequireStagedAt(_rig.VolumeId, _rig.TargetPath())).StatusCode);
    }

    [Fact]
    public async Task TheConditionSaysWhatBrokeTheAttachmentOrTheMount()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        var entry = _rig.Journal.Get(_rig.VolumeId)!;
        Assert.Null(await _rig.Staged.ConditionAsync(entry, Ct));

        _rig.Attacher.Problem = "nbdfuse exited";
        Assert.Equal("nbdfuse exited", await _rig.Staged.ConditionAsync(entry, Ct));

        _rig.Attacher.Problem = null;
        await _rig.Mounter.UnmountAsync(_rig.StagingPath, Ct);
        Assert.Contains("no longer mounted", await _rig.Staged.ConditionAsync(entry, Ct));
    }

    [Fact]
    public async Task ExpandGrowsTheMountedFilesystemAndRefusesADeviceSmallerThanAsked()
    {
        await _rig.Staging.StageAsync(_rig.Stage(), Ct);
        var device = _rig.Journal.Get(_rig.VolumeId)!.Device!;

        Assert.Equal(StagingRig.DeviceBytes, await _rig.Staged.ExpandAsync(_rig.VolumeId, _rig.StagingPath, StagingRig.DeviceBytes, Ct));
        Assert.Contains($"resize2fs {device}", _rig.Runner.Calls);

        var calls = _rig.Runner.Calls.Count;
        var e = await Assert.ThrowsAsync<RpcException>(() => _rig.Staged.ExpandAsync(_rig.VolumeId, _rig.StagingPath, StagingRig.DeviceBytes * 2, Ct));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal(calls, _rig.Runner.Calls.Count);
    }
}
