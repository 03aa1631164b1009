using System.Security.Cryptography;
using System.Text.Json;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;
using SolarCsi.Local;

namespace SolarCsi.SanityTests;

/// <summary>
/// The LVM pool against a real volume group on a loop device. Volume groups work on every machine; logical
/// volumes need device-mapper, which production nodes have and this development machine may not. Capacity,
/// placement and parameter checks run everywhere; the create either runs the whole life of a volume (with
/// device-mapper) or must fail with lvm's own reason and leave nothing behind (without it).
/// </summary>
public sealed class LvmOnThisMachineTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("solar-lvm-").FullName;
    private readonly string _vg = "solar-sanity-" + Guid.NewGuid().ToString("N")[..8];
    private string? _loop;
    private LocalCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        var image = Path.Combine(_root, "pv.img");
        using (var f = new FileStream(image, FileMode.CreateNew)) f.SetLength(256L << 20);
        _loop = HostCommand.Run("losetup", "--find", "--show", "--", image).Trim();
        HostCommand.Run("pvcreate", "--quiet", "--yes", _loop);
        HostCommand.Run("vgcreate", "--quiet", _vg, _loop);
        var pools = $$"""
            {
              "lvm": [ { "name": "default", "volumeGroup": "{{_vg}}" },
                       { "name": "thin", "volumeGroup": "{{_vg}}", "thinPool": "absent" } ]
            }
            """;
        _cluster = await LocalCluster.StartAsync(Path.Combine(_root, "cluster"), [ClusterFixture.NodeA, ClusterFixture.NodeB],
            poolsConfig: new Dictionary<string, string> { [ClusterFixture.NodeA] = pools });
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null) await _cluster.DisposeAsync();
        HostCommand.Quietly("vgremove", "--quiet", "--force", _vg);
        if (_loop is not null)
        {
            HostCommand.Quietly("pvremove", "--quiet", "--force", "--yes", _loop);
            HostCommand.Quietly("losetup", "--detach", _loop);
        }
        foreach (var dir in new[] { "/etc/lvm/backup", "/etc/lvm/archive" })
            if (Directory.Exists(dir))
                foreach (var file in Directory.EnumerateFiles(dir, _vg + "*")) File.Delete(file);
        Directory.Delete(_root, recursive: true);
    }

    private Csi.V1.Controller.ControllerClient C => _cluster.Controller.Controller;

    [Fact]
    public async Task CapacityIsTheVolumeGroupsAndLvmRequestsAreCheckedBeforeAnythingIsMade()
    {
        var onA = new Topology { Segments = { NodeTopology.Of(ClusterFixture.NodeA) } };
        var capacity = await C.GetCapacityAsync(new GetCapacityRequest { Parameters = { ["media"] = "lvm" }, AccessibleTopology = onA });
        var vgFree = VgFree();
        Assert.True(vgFree > 200L << 20, $"VG free {vgFree}");
        Assert.Equal(vgFree, capacity.AvailableCapacity);
        Assert.Equal(vgFree, capacity.MaximumVolumeSize.GetValueOrDefault());
        Assert.Equal(0, (await C.GetCapacityAsync(new GetCapacityRequest { Parameters = { ["media"] = "lvm" },
            AccessibleTopology = new Topology { Segments = { NodeTopology.Of(ClusterFixture.NodeB) } } })).AvailableCapacity);
        // A pool whose thin pool does not exist is there, with nothing to give.
        Assert.Equal(0, (await C.GetCapacityAsync(new GetCapacityRequest { Parameters = { ["media"] = "lvm", ["pool"] = "thin" }, AccessibleTopology = onA })).AvailableCapacity);

        await Expect.Code(StatusCode.InvalidArgument, async () => await C.CreateVolumeAsync(Lvm(32L << 20, ("lvmType", "thin"))));
        await Expect.Code(StatusCode.ResourceExhausted, async () => await C.CreateVolumeAsync(Lvm(32L << 20, ("pool", "thin"))));
        await Expect.Code(StatusCode.ResourceExhausted, async () => await C.CreateVolumeAsync(Lvm(1L << 30)));
        Assert.Empty(LogicalVolumes());
    }

    [Fact]
    public async Task AThickVolumeLivesItsWholeLifeWhereDeviceMapperExistsAndFailsCleanWhereItDoesNot()
    {
        var capability = ClusterFixture.Mount("xfs");
        var request = Lvm(64L << 20, ("lvmType", "thick"));
        request.VolumeCapabilities[0] = capability;
        if (!File.ReadAllText("/proc/misc").Contains("device-mapper", StringComparison.Ordinal))
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await C.CreateVolumeAsync(request));
            Assert.Contains("device-mapper", e.Status.Detail);
            Assert.Empty(LogicalVolumes());
            Assert.Empty((await C.ListVolumesAsync(new ListVolumesRequest())).Entries);
            Assert.Equal(VgFree(), (await C.GetCapacityAsync(new GetCapacityRequest { Parameters = { ["media"] = "lvm" },
                AccessibleTopology = new Topology { Segments = { NodeTopology.Of(ClusterFixture.NodeA) } } })).AvailableCapacity);
            return;
        }

        var volume = (await C.CreateVolumeAsync(request)).Volume;
        var steps = new NodeSteps(_cluster, volume, capability);
        var payload = RandomNumberGenerator.GetBytes(4 << 20);
        try
        {
            Assert.Equal(64L << 20, volume.CapacityBytes);
            Assert.Single(LogicalVolumes());
            await steps.AttachAsync();
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "data.bin"), payload);
            await C.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest { VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 128L << 20 } });
            await steps.Node.NodeExpandVolumeAsync(new NodeExpandVolumeRequest { VolumeId = volume.VolumeId, VolumePath = steps.Target, CapacityRange = new CapacityRange { RequiredBytes = 128L << 20 } });
            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            await steps.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "data.bin"))));
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await C.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        }
        Assert.Empty(LogicalVolumes());
    }

    private static CreateVolumeRequest Lvm(long bytes, params (string Key, string Value)[] parameters)
    {
        var request = ClusterFixture.NewVolumeOf("lvm", bytes, ClusterFixture.Mount());
        foreach (var (key, value) in parameters) request.Parameters[key] = value;
        return request;
    }

    private long VgFree()
    {
        using var doc = JsonDocument.Parse(HostCommand.Run("vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "--options", "vg_free", _vg));
        return long.Parse(doc.RootElement.GetProperty("report")[0].GetProperty("vg")[0].GetProperty("vg_free").GetString()!);
    }

    private string[] LogicalVolumes() =>
        HostCommand.Run("lvs", "--noheadings", "--options", "lv_name", _vg).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
