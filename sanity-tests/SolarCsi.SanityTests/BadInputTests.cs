using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Nbd;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.SanityTests;

/// <summary>
/// Hostile and malformed requests: each gets its proper code with a message, and nothing on disk changes — no
/// volume, no journal entry, no mount, no loop device, no process. Cases run against a volume that exists and is
/// staged, so a bad request has something real to damage.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BadInputTests(ClusterFixture fx) : IAsyncLifetime
{
    private Volume _volume = null!;
    private NodeSteps _steps = null!;

    public async Task InitializeAsync()
    {
        _volume = await fx.CreateAsync(ClusterFixture.NewVolume(bytes: 32 << 20));
        _steps = new NodeSteps(fx, _volume, ClusterFixture.Mount());
        await _steps.StageAsync();
    }

    public async Task DisposeAsync()
    {
        await _steps.DetachQuietlyAsync();
        await fx.DeleteAsync(_volume.VolumeId);
    }

    private sealed record Case(string Name, StatusCode Code, Func<BadInputTests, Task> Call)
    {
        public override string ToString() => Name;
    }

    private Csi.V1.Controller.ControllerClient C => fx.Controller;
    private Csi.V1.Node.NodeClient N => fx.A.Node;
    private string Kubelet => fx.Cluster.KubeletDir;
    private static string Missing(string name = "missing") => StorageId.ForVolume("file", "default", ClusterFixture.NodeA, name).ToString();

    private static CreateVolumeRequest Create(Action<CreateVolumeRequest> change)
    {
        var request = ClusterFixture.NewVolume(bytes: 16 << 20);
        change(request);
        return request;
    }

    private NodeStageVolumeRequest Stage(Action<NodeStageVolumeRequest> change)
    {
        var request = new NodeStageVolumeRequest { VolumeId = _volume.VolumeId, StagingTargetPath = fx.NewStagingPath(), VolumeCapability = ClusterFixture.Mount() };
        change(request);
        return request;
    }

    private NodePublishVolumeRequest Publish(Action<NodePublishVolumeRequest> change)
    {
        var request = _steps.PublishRequest();
        request.TargetPath = fx.NewTargetPath();
        change(request);
        return request;
    }

    private static VolumeCapability Cap(Action<VolumeCapability> change)
    {
        var cap = ClusterFixture.Mount();
        change(cap);
        return cap;
    }

    private static readonly Case[] Cases =
    [
        // CreateVolume
        new("create: empty name", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.Name = "")).ResponseAsync),
        new("create: control characters in name", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.Name = "pvc\u0000x")).ResponseAsync),
        new("create: 129-byte name", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.Name = new string('n', 129))).ResponseAsync),
        new("create: no capabilities", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.VolumeCapabilities.Clear())).ResponseAsync),
        new("create: no access type", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.VolumeCapabilities[0] = Cap(c => c.ClearAccessType()))).ResponseAsync),
        new("create: no access mode", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.VolumeCapabilities[0] = Cap(c => c.AccessMode = null))).ResponseAsync),
        new("create: unknown fsType", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.VolumeCapabilities[0] = ClusterFixture.Mount("ntfs"))).ResponseAsync),
        new("create: multi-writer on a local volume", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.VolumeCapabilities[0] = ClusterFixture.Mount(mode: AccessMode.MultiNodeMultiWriter))).ResponseAsync),
        new("create: multi-reader on a local volume", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.VolumeCapabilities[0] = ClusterFixture.Mount(mode: AccessMode.MultiNodeReaderOnly))).ResponseAsync),
        new("create: multi-writer over NBD", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => { r.Parameters["media"] = "nbd"; r.VolumeCapabilities[0] = ClusterFixture.Mount(mode: AccessMode.MultiNodeMultiWriter); })).ResponseAsync),
        new("create: unknown parameter", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.Parameters["replicas"] = "3")).ResponseAsync),
        new("create: unknown media", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.Parameters["media"] = "floppy")).ResponseAsync),
        new("create: pool with traversal", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.Parameters["pool"] = "../../etc")).ResponseAsync),
        new("create: pool nobody has", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.Parameters["pool"] = "gold")).ResponseAsync),
        new("create: mkfs option copying a host directory in", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.Parameters["mkfsOptions"] = "-d etc")).ResponseAsync),
        new("create: mkfs undo file on the host", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.Parameters["mkfsOptions"] = "-z var.undo")).ResponseAsync),
        new("create: xfs external log device", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => { r.Parameters["mkfsOptions"] = "-l logdev=sda"; r.VolumeCapabilities[0] = ClusterFixture.Mount("xfs"); })).ResponseAsync),
        new("create: negative size", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.CapacityRange.RequiredBytes = -1)).ResponseAsync),
        new("create: required above limit", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.CapacityRange = new CapacityRange { RequiredBytes = 2 << 20, LimitBytes = 1 << 20 })).ResponseAsync),
        new("create: absurd size", StatusCode.OutOfRange, t => t.C.CreateVolumeAsync(Create(r => r.CapacityRange.RequiredBytes = long.MaxValue)).ResponseAsync),
        new("create: more than the pool has", StatusCode.ResourceExhausted, t => t.C.CreateVolumeAsync(Create(r => r.CapacityRange.RequiredBytes = 40L << 40)).ResponseAsync),
        new("create: mount flag with a space", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.VolumeCapabilities[0].Mount.MountFlags.Add("ro,x y"))).ResponseAsync),
        new("create: 5 KiB of mount flags", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.VolumeCapabilities[0].Mount.MountFlags.Add(new string('o', 5000)))).ResponseAsync),
        new("create: snapshot source with traversal", StatusCode.NotFound, t => t.C.CreateVolumeAsync(Create(r => r.VolumeContentSource = new VolumeContentSource { Snapshot = new() { SnapshotId = "../../etc/shadow" } })).ResponseAsync),
        new("create: volume source that is a snapshot id", StatusCode.NotFound, t => t.C.CreateVolumeAsync(Create(r => r.VolumeContentSource = new VolumeContentSource { Volume = new() { VolumeId = StorageId.ForSnapshot("file", "default", ClusterFixture.NodeA, "s").ToString() } })).ResponseAsync),
        new("create: empty snapshot source", StatusCode.InvalidArgument, t => t.C.CreateVolumeAsync(Create(r => r.VolumeContentSource = new VolumeContentSource { Snapshot = new() })).ResponseAsync),
        // Other controller RPCs
        new("delete: empty id", StatusCode.InvalidArgument, t => t.C.DeleteVolumeAsync(new DeleteVolumeRequest()).ResponseAsync),
        new("publish: no node", StatusCode.InvalidArgument, t => t.C.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = t._volume.VolumeId, VolumeCapability = ClusterFixture.Mount() }).ResponseAsync),
        new("publish: wrong node id", StatusCode.NotFound, t => t.C.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = t._volume.VolumeId, NodeId = "node-zz", VolumeCapability = ClusterFixture.Mount() }).ResponseAsync),
        new("publish: local volume to another node", StatusCode.FailedPrecondition, t => t.C.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = t._volume.VolumeId, NodeId = ClusterFixture.NodeB, VolumeCapability = ClusterFixture.Mount() }).ResponseAsync),
        new("publish: traversal in volume id", StatusCode.NotFound, t => t.C.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest { VolumeId = "file~default~node-a~../../x", NodeId = ClusterFixture.NodeA, VolumeCapability = ClusterFixture.Mount() }).ResponseAsync),
        new("validate: empty id", StatusCode.InvalidArgument, t => t.C.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest { VolumeCapabilities = { ClusterFixture.Mount() } }).ResponseAsync),
        new("list volumes: negative max", StatusCode.InvalidArgument, t => t.C.ListVolumesAsync(new ListVolumesRequest { MaxEntries = -1 }).ResponseAsync),
        new("list volumes: forged token", StatusCode.Aborted, t => t.C.ListVolumesAsync(new ListVolumesRequest { StartingToken = "' OR 1=1 --" }).ResponseAsync),
        new("list snapshots: forged token", StatusCode.Aborted, t => t.C.ListSnapshotsAsync(new ListSnapshotsRequest { StartingToken = "../../" }).ResponseAsync),
        new("snapshot: empty name", StatusCode.InvalidArgument, t => t.C.CreateSnapshotAsync(new CreateSnapshotRequest { SourceVolumeId = t._volume.VolumeId }).ResponseAsync),
        new("snapshot: traversal in source", StatusCode.NotFound, t => t.C.CreateSnapshotAsync(new CreateSnapshotRequest { Name = "s-bad", SourceVolumeId = "../../etc" }).ResponseAsync),
        new("expand: no range", StatusCode.InvalidArgument, t => t.C.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest { VolumeId = t._volume.VolumeId }).ResponseAsync),
        new("expand: absurd size", StatusCode.OutOfRange, t => t.C.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest { VolumeId = t._volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = long.MaxValue } }).ResponseAsync),
        // Node RPCs
        new("stage: traversal in volume id", StatusCode.NotFound, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.VolumeId = "../../../../etc/passwd")).ResponseAsync),
        new("stage: slash in volume id", StatusCode.NotFound, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.VolumeId = "file~default~node-a/x~v000000000000000000000000")).ResponseAsync),
        new("stage: 10 KB volume id", StatusCode.NotFound, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.VolumeId = new string('v', 10_000))).ResponseAsync),
        new("stage: mkfs options from the volume context that copy a host directory in", StatusCode.InvalidArgument,
            t => t.N.NodeStageVolumeAsync(t.Stage(r => r.VolumeContext[Core.Validation.VolumeContextKeys.MkfsOptions] = "-m 0 -dvar")).ResponseAsync),
        new("stage: unknown volume", StatusCode.NotFound, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.VolumeId = Missing())).ResponseAsync),
        new("stage: relative staging path", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.StagingTargetPath = "staging/x")).ResponseAsync),
        new("stage: staging outside the roots", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.StagingTargetPath = "/etc/solar")).ResponseAsync),
        new("stage: '..' in staging path", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.StagingTargetPath = t.Kubelet + "/plugins/../../../etc")).ResponseAsync),
        new("stage: staging through a symlink to /etc", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.StagingTargetPath = t.EscapeLink() + "/staging")).ResponseAsync),
        new("stage: 5000-character staging path", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.StagingTargetPath = t.Kubelet + "/" + new string('p', 5000))).ResponseAsync),
        new("stage: already staged elsewhere", StatusCode.AlreadyExists, t => t.N.NodeStageVolumeAsync(t.Stage(_ => { })).ResponseAsync),
        new("stage: block on a filesystem stage", StatusCode.AlreadyExists, t => t.N.NodeStageVolumeAsync(new NodeStageVolumeRequest { VolumeId = t._volume.VolumeId, StagingTargetPath = t._steps.Staging, VolumeCapability = ClusterFixture.Block() }).ResponseAsync),
        new("stage: xfs over the ext4 stage", StatusCode.AlreadyExists, t => t.N.NodeStageVolumeAsync(new NodeStageVolumeRequest { VolumeId = t._volume.VolumeId, StagingTargetPath = t._steps.Staging, VolumeCapability = ClusterFixture.Mount("xfs") }).ResponseAsync),
        new("publish: target outside the roots", StatusCode.InvalidArgument, t => t.N.NodePublishVolumeAsync(t.Publish(r => r.TargetPath = "/root/.ssh")).ResponseAsync),
        new("publish: target through a symlink to /etc", StatusCode.InvalidArgument, t => t.N.NodePublishVolumeAsync(t.Publish(r => r.TargetPath = t.EscapeLink() + "/mount")).ResponseAsync),
        new("publish: target equals staging", StatusCode.InvalidArgument, t => t.N.NodePublishVolumeAsync(t.Publish(r => r.TargetPath = t._steps.Staging)).ResponseAsync),
        new("publish: wrong staging path", StatusCode.FailedPrecondition, t => t.N.NodePublishVolumeAsync(t.Publish(r => r.StagingTargetPath = t.Kubelet + "/plugins/other")).ResponseAsync),
        new("publish: block capability on a filesystem stage", StatusCode.AlreadyExists, t => t.N.NodePublishVolumeAsync(t.Publish(r => r.VolumeCapability = ClusterFixture.Block())).ResponseAsync),
        new("unpublish: target outside the roots", StatusCode.InvalidArgument, t => t.N.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = t._volume.VolumeId, TargetPath = "/" }).ResponseAsync),
        new("unstage: staging outside the roots", StatusCode.InvalidArgument, t => t.N.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = t._volume.VolumeId, StagingTargetPath = "/proc" }).ResponseAsync),
        new("stats: unknown volume", StatusCode.NotFound, t => t.N.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = Missing(), VolumePath = t._steps.Staging }).ResponseAsync),
        new("stats: path of another volume", StatusCode.NotFound, t => t.N.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = t._volume.VolumeId, VolumePath = "/etc" }).ResponseAsync),
        new("expand node: unknown volume", StatusCode.NotFound, t => t.N.NodeExpandVolumeAsync(new NodeExpandVolumeRequest { VolumeId = Missing(), VolumePath = t._steps.Staging }).ResponseAsync),
        new("stage nbd: no publish context", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.Stage(r => r.VolumeId = StorageId.ForVolume("nbd", "default", ClusterFixture.NodeB, "x").ToString())).ResponseAsync),
        new("stage nbd: port out of range", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.NbdStage(c => c[NbdConnection.PortKey] = "99999")).ResponseAsync),
        new("stage nbd: shell in host", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.NbdStage(c => c[NbdConnection.HostKey] = "$(reboot)")).ResponseAsync),
        new("stage nbd: key for another node", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.NbdStage(c => c[NbdConnection.IdentityKey] = ClusterFixture.NodeB)).ResponseAsync),
        new("stage nbd: short key", StatusCode.InvalidArgument, t => t.N.NodeStageVolumeAsync(t.NbdStage(c => c[NbdConnection.PskKey] = "abcd")).ResponseAsync),
    ];

    public static TheoryData<string> CaseNames() => new(Cases.Select(c => c.Name));

    private string EscapeLink()
    {
        var link = Path.Combine(Kubelet, "pods", "escape-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        Directory.CreateSymbolicLink(link, "/etc");
        return link;
    }

    private NodeStageVolumeRequest NbdStage(Action<Dictionary<string, string>> change)
    {
        var context = new NbdConnection("127.0.0.1", 10809, ClusterFixture.NodeA, new string('a', 64), false).ToContext();
        change(context);
        return Stage(r =>
        {
            r.VolumeId = StorageId.ForVolume("nbd", "default", ClusterFixture.NodeB, "x").ToString();
            r.PublishContext.Add(context);
        });
    }

    [Fact]
    public void CoversAtLeastFortyCases() => Assert.True(Cases.Length >= 40, $"{Cases.Length} cases");

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task GetsItsCodeAndChangesNothing(string name)
    {
        var @case = Cases.Single(c => c.Name == name);
        var before = await SnapshotOfStateAsync();
        var e = await Expect.Code(@case.Code, () => @case.Call(this));
        Assert.False(string.IsNullOrWhiteSpace(e.Status.Detail));
        Assert.Equal(before, await SnapshotOfStateAsync());
    }

    /// <summary>Volumes, snapshots, journal files, mounts, loop devices and helper processes, as one comparable string.</summary>
    private async Task<string> SnapshotOfStateAsync()
    {
        var volumes = (await C.ListVolumesAsync(new ListVolumesRequest())).Entries.Select(e => e.Volume.VolumeId + "@" + string.Join(",", e.Status.PublishedNodeIds));
        var snapshots = (await C.ListSnapshotsAsync(new ListSnapshotsRequest())).Entries.Select(e => e.Snapshot.SnapshotId);
        var journal = fx.Cluster.Nodes.SelectMany(n => Directory.EnumerateFiles(Path.Combine(n.Directory, "state", "node", "journal")))
            .Select(f => f + ":" + File.ReadAllText(f));
        var mounts = SolarCsi.Node.Mounts.MountInfoParser.Parse(await File.ReadAllTextAsync("/proc/self/mountinfo"))
            .Where(m => m.MountPoint.StartsWith(fx.Cluster.Root, StringComparison.Ordinal)).Select(m => m.MountPoint + "=" + m.Source);
        var leftovers = await fx.Cluster.FindLeftoversAsync();
        return string.Join("\n", volumes.Concat(snapshots).Concat(journal).Concat(mounts).Concat(leftovers.LoopDevices).Order(StringComparer.Ordinal))
               + $"\nprocesses:{leftovers.Processes.Count}";
    }
}
