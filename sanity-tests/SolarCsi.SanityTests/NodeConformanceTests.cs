using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Node.Devices;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Mounts;
using NodeCapType = Csi.V1.NodeServiceCapability.Types.RPC.Types.Type;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.SanityTests;

[Collection(ClusterCollection.Name)]
public sealed class NodeConformanceTests(ClusterFixture fx)
{
    private Csi.V1.Node.NodeClient N => fx.A.Node;

    [Fact]
    public async Task NodeInfoAndCapabilities()
    {
        var info = await N.NodeGetInfoAsync(new NodeGetInfoRequest());
        Assert.Equal(ClusterFixture.NodeA, info.NodeId);
        Assert.True(info.MaxVolumesPerNode > 0);
        Assert.Equal(ClusterFixture.NodeA, info.AccessibleTopology.Segments[NodeTopology.Key]);
        var caps = (await N.NodeGetCapabilitiesAsync(new NodeGetCapabilitiesRequest())).Capabilities.Select(c => c.Rpc.Type).ToHashSet();
        Assert.Equal(new HashSet<NodeCapType> { NodeCapType.StageUnstageVolume, NodeCapType.GetVolumeStats, NodeCapType.ExpandVolume, NodeCapType.VolumeCondition }, caps);
    }

    [Theory]
    [InlineData("ext4")]
    [InlineData("xfs")]
    public async Task FullLifecycleKeepsDataAcrossDetachAndEveryStepIsIdempotent(string fsType)
    {
        var capability = ClusterFixture.Mount(fsType);
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 320 << 20, capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        var payload = RandomNumberGenerator.GetBytes(4 << 20);
        try
        {
            await steps.ControllerPublishAsync();
            Directory.CreateDirectory(steps.Staging);
            for (var i = 0; i < 10; i++) await N.NodeStageVolumeAsync(steps.StageRequest());
            Directory.CreateDirectory(Path.GetDirectoryName(steps.Target)!);
            for (var i = 0; i < 10; i++) await N.NodePublishVolumeAsync(steps.PublishRequest());
            var mounts = await MountsUnderAsync(fx.Cluster.Root);
            Assert.Equal(fsType, mounts.Single(m => m.MountPoint == steps.Staging).FsType);
            Assert.Single(mounts, m => m.MountPoint == steps.Target);

            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "data.bin"), payload);
            for (var i = 0; i < 10; i++) await steps.UnpublishAsync();
            Assert.False(Path.Exists(steps.Target));
            for (var i = 0; i < 10; i++) await steps.UnstageAsync();
            Assert.Empty(await MountsUnderAsync(fx.Cluster.Root));
            Assert.Empty((await fx.Cluster.FindLeftoversAsync()).LoopDevices);

            await steps.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"))));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
    }

    [Fact]
    public async Task RawBlockVolumeMovesRealBytes()
    {
        var capability = ClusterFixture.Block();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 32 << 20, capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        var payload = RandomNumberGenerator.GetBytes(1 << 20);
        try
        {
            await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            await steps.AttachAsync();
            Assert.True(File.Exists(steps.Target));
            await using (var device = new FileStream(steps.Target, FileMode.Open, FileAccess.Write))
            {
                device.Position = 8 << 20;
                await device.WriteAsync(payload);
                device.Flush(flushToDisk: true);
            }
            var stats = await N.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = steps.Target });
            Assert.Equal(32 << 20, Assert.Single(stats.Usage).Total);
            await steps.UnpublishAsync();
            Assert.False(File.Exists(steps.Target));
            await steps.UnstageAsync();
            Assert.Empty((await fx.Cluster.FindLeftoversAsync()).LoopDevices);

            await steps.AttachAsync();
            var readBack = new byte[payload.Length];
            await using (var device = new FileStream(steps.Target, FileMode.Open, FileAccess.Read))
            {
                device.Position = 8 << 20;
                await device.ReadExactlyAsync(readBack);
            }
            Assert.Equal(payload, readBack);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task SingleNodeMultiWriterPublishesToSeveralPodsOnOneNode()
    {
        var capability = ClusterFixture.Mount(mode: AccessMode.SingleNodeMultiWriter);
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var first = new NodeSteps(fx, volume, capability);
        var secondTarget = fx.NewTargetPath();
        try
        {
            await first.ControllerPublishAsync();
            await first.AttachAsync();
            var second = first.PublishRequest();
            second.TargetPath = secondTarget;
            Directory.CreateDirectory(Path.GetDirectoryName(secondTarget)!);
            await N.NodePublishVolumeAsync(second);
            await File.WriteAllTextAsync(Path.Combine(first.Target, "from-first"), "1");
            await File.WriteAllTextAsync(Path.Combine(secondTarget, "from-second"), "2");
            Assert.Equal("2", await File.ReadAllTextAsync(Path.Combine(first.Target, "from-second")));
            Assert.Equal("1", await File.ReadAllTextAsync(Path.Combine(secondTarget, "from-first")));
            await N.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId, TargetPath = secondTarget });
        }
        finally
        {
            await first.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task ReadOnlyPublishRefusesWrites()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            await steps.AttachAsync(readOnly: true);
            Assert.True((await MountsUnderAsync(fx.Cluster.Root)).Single(m => m.MountPoint == steps.Target).ReadOnly);
            var e = await Assert.ThrowsAnyAsync<IOException>(() => File.WriteAllTextAsync(Path.Combine(steps.Target, "x"), "nope"));
            Assert.Contains("Read-only", e.Message, StringComparison.OrdinalIgnoreCase);
            await Expect.Code(StatusCode.AlreadyExists, async () => await N.NodePublishVolumeAsync(steps.PublishRequest(readOnly: false)));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task RequiredFieldsAndHostilePathsAreInvalidArgumentAndChangeNothing()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            var noId = steps.StageRequest(); noId.VolumeId = "";
            var noStaging = steps.StageRequest(); noStaging.StagingTargetPath = "";
            var noCap = steps.StageRequest(); noCap.VolumeCapability = null;
            var outside = steps.StageRequest(); outside.StagingTargetPath = "/tmp/elsewhere";
            var traversal = steps.StageRequest(); traversal.StagingTargetPath = fx.Cluster.KubeletDir + "/../../etc";
            foreach (var bad in new[] { noId, noStaging, noCap, outside, traversal })
                await Expect.Code(StatusCode.InvalidArgument, async () => await N.NodeStageVolumeAsync(bad));
            var hostileId = steps.StageRequest(); hostileId.VolumeId = "file~default~node-a~../../../etc";
            await Expect.Code(StatusCode.NotFound, async () => await N.NodeStageVolumeAsync(hostileId));

            var noTarget = steps.PublishRequest(); noTarget.TargetPath = "";
            var targetOutside = steps.PublishRequest(); targetOutside.TargetPath = "/etc/x";
            var noPublishCap = steps.PublishRequest(); noPublishCap.VolumeCapability = null;
            foreach (var bad in new[] { noTarget, targetOutside, noPublishCap })
                await Expect.Code(StatusCode.InvalidArgument, async () => await N.NodePublishVolumeAsync(bad));
            await Expect.Code(StatusCode.InvalidArgument, async () => await N.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volume.VolumeId }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await N.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { TargetPath = steps.Target }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await N.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volume.VolumeId }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await N.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { StagingTargetPath = steps.Staging }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await N.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId }));
            await Expect.Code(StatusCode.InvalidArgument, async () => await N.NodeExpandVolumeAsync(new NodeExpandVolumeRequest { VolumeId = volume.VolumeId }));
            Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
        }
        finally
        {
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task PublishNeedsALiveStageAndUnstageWaitsForUnpublish()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            await Expect.Code(StatusCode.FailedPrecondition, async () => await steps.PublishAsync());
            await steps.StageAsync();
            var wrongStaging = steps.PublishRequest(); wrongStaging.StagingTargetPath = fx.NewStagingPath();
            await Expect.Code(StatusCode.FailedPrecondition, async () => await N.NodePublishVolumeAsync(wrongStaging));
            await steps.PublishAsync();
            var e = await Expect.Code(StatusCode.FailedPrecondition, async () => await steps.UnstageAsync());
            Assert.Contains(steps.Target, e.Status.Detail);
            await steps.UnpublishAsync();

            // A staging mount that vanished behind our back (a failed unstage, a reboot) leaves an empty
            // directory; publishing it would hand the pod an empty disk (kubernetes#106729).
            await new SolarCsi.Node.Mounts.LinuxMounter(new SolarCsi.Node.Processes.ProcessRunner(Microsoft.Extensions.Logging.Abstractions.NullLogger<SolarCsi.Node.Processes.ProcessRunner>.Instance))
                .UnmountAsync(steps.Staging, CancellationToken.None);
            await Expect.Code(StatusCode.FailedPrecondition, async () => await steps.PublishAsync());
            Assert.False(Path.Exists(steps.Target) && (await MountsUnderAsync(fx.Cluster.Root)).Any(m => m.MountPoint == steps.Target));
            await steps.StageAsync();
            await steps.PublishAsync();
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task VolumeStatsReportBytesAndInodes()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 64 << 20, capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            await Expect.Code(StatusCode.NotFound, async () => await N.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = steps.Target }));
            await steps.AttachAsync();
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "f"), new byte[8 << 20]);
            var stats = await N.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = steps.Target });
            var bytes = stats.Usage.Single(u => u.Unit == VolumeUsage.Types.Unit.Bytes);
            var inodes = stats.Usage.Single(u => u.Unit == VolumeUsage.Types.Unit.Inodes);
            Assert.InRange(bytes.Total, 40 << 20, 64 << 20);
            Assert.True(bytes.Used >= 8 << 20);
            Assert.True(inodes.Total > 0 && inodes.Used > 0);
            await Expect.Code(StatusCode.NotFound, async () => await N.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volume.VolumeId, VolumePath = fx.NewTargetPath() }));
            await Expect.Code(StatusCode.NotFound, async () => await N.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest
            {
                VolumeId = StorageId.ForVolume("file", "default", ClusterFixture.NodeA, "nope").ToString(), VolumePath = steps.Target,
            }));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    public static TheoryData<string> OnlineResizableHere() =>
        HostCapabilities.Has(HostCapabilities.SysResource) ? new TheoryData<string> { "xfs", "ext4" } : new TheoryData<string> { "xfs" };

    /// <summary>
    /// ext4 grows here too where this process has CAP_SYS_RESOURCE (the kernel refuses an online ext4 resize without
    /// it: ext4_resize_begin); this machine's test process does not, so ext4's online expansion through CSI runs in
    /// the VM test host, where the node plugin is root with every capability
    /// (tests/SolarCsi.Tests/Vm/NodePluginInGuestTests).
    /// </summary>
    [Theory]
    [MemberData(nameof(OnlineResizableHere))]
    public async Task OnlineExpansionGrowsTheFilesystem(string fsType)
    {
        var capability = ClusterFixture.Mount(fsType);
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 320 << 20, capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            await steps.AttachAsync();
            var before = FilesystemStats.Of(steps.Target).TotalBytes;
            var grown = await fx.Controller.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
            {
                VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 640 << 20 }, VolumeCapability = capability,
            });
            var expanded = await N.NodeExpandVolumeAsync(new NodeExpandVolumeRequest
            {
                VolumeId = volume.VolumeId, VolumePath = steps.Target, StagingTargetPath = steps.Staging,
                CapacityRange = new CapacityRange { RequiredBytes = grown.CapacityBytes }, VolumeCapability = capability,
            });
            Assert.Equal(640 << 20, expanded.CapacityBytes);
            var after = FilesystemStats.Of(steps.Target).TotalBytes;
            Assert.True(after > before + (250 << 20), $"filesystem grew from {before} to {after} only");
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    /// <summary>Restore and clone on every pool that snapshots (file, and NBD images on their storage host), into a bigger size.</summary>
    [Theory]
    [InlineData("file")]
    [InlineData("nbd")]
    public async Task RestoredAndClonedVolumesCarryTheData(string media)
    {
        var capability = ClusterFixture.Mount();
        // NBD volumes are attached from the node that does not hold them when placement allows, as in production.
        var node = media == "nbd" ? fx.B : fx.Cluster.Nodes[0];
        var source = await fx.CreateAsync(ClusterFixture.NewVolumeOf(media, 64 << 20, capability));
        var created = new List<string> { source.VolumeId };
        string? snapshotId = null;
        var steps = new NodeSteps(fx, source, capability, node);
        try
        {
            await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            await File.WriteAllTextAsync(Path.Combine(steps.Target, "note.txt"), "before the snapshot");
            // Taken while mounted: the node freezes the filesystem for the copy.
            snapshotId = (await fx.Controller.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "snap-" + Guid.NewGuid().ToString("N"), SourceVolumeId = source.VolumeId })).Snapshot.SnapshotId;
            await File.WriteAllTextAsync(Path.Combine(steps.Target, "note.txt"), "after the snapshot");
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            await steps.ControllerUnpublishAsync();

            var fromSnapshot = ClusterFixture.NewVolumeOf(media, 128 << 20, capability);
            fromSnapshot.VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = snapshotId } };
            var restored = await fx.CreateAsync(fromSnapshot);
            created.Add(restored.VolumeId);
            Assert.Equal(snapshotId, restored.ContentSource.Snapshot.SnapshotId);
            Assert.Equal(128 << 20, restored.CapacityBytes);

            var fromVolume = ClusterFixture.NewVolumeOf(media, 0, capability);
            fromVolume.CapacityRange = null;
            fromVolume.VolumeContentSource = new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = source.VolumeId } };
            var clone = await fx.CreateAsync(fromVolume);
            created.Add(clone.VolumeId);
            Assert.True(clone.CapacityBytes >= source.CapacityBytes);

            var tooSmall = ClusterFixture.NewVolumeOf(media, 0, capability);
            tooSmall.CapacityRange = new CapacityRange { LimitBytes = 32 << 20 };
            tooSmall.VolumeContentSource = fromVolume.VolumeContentSource;
            await Expect.Code(StatusCode.OutOfRange, async () => await fx.Controller.CreateVolumeAsync(tooSmall));
            var missing = ClusterFixture.NewVolumeOf(media, 64 << 20, capability);
            missing.VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = StorageId.ForSnapshot(media, "default", ClusterFixture.NodeA, "gone").ToString() } };
            await Expect.Code(StatusCode.NotFound, async () => await fx.Controller.CreateVolumeAsync(missing));

            foreach (var (volume, expected) in new[] { (restored, "before the snapshot"), (clone, "after the snapshot") })
            {
                var s = new NodeSteps(fx, volume, capability, node);
                try
                {
                    await s.ControllerPublishAsync();
                    await s.AttachAsync();
                    Assert.Equal(expected, await File.ReadAllTextAsync(Path.Combine(s.Target, "note.txt")));
                    // The filesystem fills the bigger volume, not the 64 MiB it was copied from.
                    if (volume == restored) Assert.True(SolarCsi.Node.Devices.FilesystemStats.Of(s.Target).TotalBytes > 100L << 20, "the restored filesystem was not grown to its volume");
                }
                finally
                {
                    await s.DetachQuietlyAsync();
                }
            }
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            if (snapshotId is not null) await fx.Controller.DeleteSnapshotAsync(new DeleteSnapshotRequest { SnapshotId = snapshotId });
            foreach (var id in created) await fx.DeleteAsync(id);
        }
    }

    [Fact]
    public async Task ConcurrentOperationsOnOneVolumeAreAbortedNotInterleaved()
    {
        var capability = ClusterFixture.Mount("xfs");
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 512 << 20, capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            Directory.CreateDirectory(steps.Staging);
            var calls = Enumerable.Range(0, 6).Select(_ => Expect.OutcomeAsync(N.NodeStageVolumeAsync(steps.StageRequest()).ResponseAsync)).ToArray();
            var codes = await Task.WhenAll(calls);
            Assert.All(codes, c => Assert.True(c is StatusCode.OK or StatusCode.Aborted, $"unexpected {c}"));
            Assert.Contains(StatusCode.OK, codes);
            await steps.StageAsync();
            Assert.Single(await MountsUnderAsync(fx.Cluster.Root), m => m.MountPoint == steps.Staging);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task StagedVolumesSurviveAPluginCrash()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            await steps.StageAsync();
            await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA, crash: true);
            await steps.PublishAsync();
            await File.WriteAllTextAsync(Path.Combine(steps.Target, "still-here"), "yes");
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            Assert.True((await fx.Cluster.FindLeftoversAsync()).IsEmpty);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task UnstageRetryDetachesADeviceLeftBehindByAnInterruptedUnstage()
    {
        var capability = ClusterFixture.Block();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            // As if the plugin died after forgetting the volume but before detaching (ceph-csi#510).
            await StageThenForgetAsync(steps, volume);
            await steps.UnstageAsync();
            Assert.Empty((await fx.Cluster.FindLeftoversAsync()).LoopDevices);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task RestartDetachesDevicesNoJournalExplains()
    {
        var capability = ClusterFixture.Block();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            await StageThenForgetAsync(steps, volume);
            await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA, crash: true);
            Assert.Empty((await fx.Cluster.FindLeftoversAsync()).LoopDevices);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task PeriodicReconcileRemovesResidueWithoutAnyCall()
    {
        var capability = ClusterFixture.Block();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolume(capability: capability));
        var steps = new NodeSteps(fx, volume, capability);
        try
        {
            const string detached = "solar_reconciler_actions_total{action=\"detach-residual-loop\"}";
            var before = await MetricsScrape.ValueAsync(fx.A.MetricsUrl, detached);
            // The plugin forgot the volume (a lost journal) and the CO will never call for it again.
            await StageThenForgetAsync(steps, volume);
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while ((await fx.Cluster.FindLeftoversAsync()).LoopDevices.Count > 0 && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.Empty((await fx.Cluster.FindLeftoversAsync()).LoopDevices);
            // ...and says so where operators look.
            Assert.Equal(before + 1, await MetricsScrape.ValueAsync(fx.A.MetricsUrl, detached));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    /// <summary>Stages a block volume, then loses its journal entry: a device attached that nothing explains.</summary>
    private async Task StageThenForgetAsync(NodeSteps steps, Volume volume)
    {
        await steps.StageAsync();
        var journal = Path.Combine(fx.A.Directory, "state", "node", "journal", volume.VolumeId + ".json");
        Assert.True(File.Exists(journal));
        Assert.Single((await fx.Cluster.FindLeftoversAsync()).LoopDevices);
        File.Delete(journal);
    }

    private static async Task<IReadOnlyList<MountEntry>> MountsUnderAsync(string root) =>
        MountInfoParser.Parse(await File.ReadAllTextAsync("/proc/self/mountinfo")).Where(m => m.MountPoint.StartsWith(root + "/", StringComparison.Ordinal)).ToArray();
}
