using Csi.V1;
using static Csi.V1.VolumeCapability.Types.AccessMode.Types;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// One volume of the guest's all-in-one plugin, driven in kubelet's order: CreateVolume, ControllerPublish to the
/// guest's node, NodeStage, NodePublish — and back. A filesystem volume's <see cref="Target"/> is a directory; a raw
/// block volume's is the device file kubelet would hand the pod.
/// </summary>
public sealed class GuestVolume(VmTestHost g, IGuestCsi plugin, string name, Volume volume, VolumeCapability capability)
{
    public static DateTime Deadline() => DateTime.UtcNow.AddSeconds(120);

    public static VolumeCapability Ext4(Mode mode = Mode.SingleNodeWriter) => new()
    {
        Mount = new VolumeCapability.Types.MountVolume { FsType = "ext4" },
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = mode },
    };

    public static VolumeCapability Block(Mode mode = Mode.SingleNodeWriter) => new()
    {
        Block = new VolumeCapability.Types.BlockVolume(),
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = mode },
    };

    private IDictionary<string, string> _publishContext = new Dictionary<string, string>();

    public Volume Volume { get; } = volume;
    public string Id => Volume.VolumeId;
    public VolumeCapability Capability { get; set; } = capability;
    public bool ReadOnly { get; set; }
    public string Staging { get; } = $"{GuestPlugin.KubeletDir}/plugins/kubernetes.io/csi/staging/{name}";
    public string Target { get; } = $"{GuestPlugin.KubeletDir}/pods/{name}/volumes/{(capability.Block is null ? "mount" : "dev")}";

    /// <summary>CreateVolume with <paramref name="parameters"/> (media at least) and an optional content source.</summary>
    public static async Task<GuestVolume> CreateAsync(VmTestHost g, IGuestCsi plugin, string name, long bytes, VolumeCapability capability,
        IDictionary<string, string> parameters, VolumeContentSource? source = null)
    {
        var request = new CreateVolumeRequest
        {
            Name = name, CapacityRange = new CapacityRange { RequiredBytes = bytes }, VolumeCapabilities = { capability }, Parameters = { parameters },
        };
        if (source is not null) request.VolumeContentSource = source;
        return new GuestVolume(g, plugin, name, (await plugin.Controller.CreateVolumeAsync(request, deadline: Deadline())).Volume, capability);
    }

    /// <summary>CreateVolume, ControllerPublish, NodeStage, NodePublish.</summary>
    public static async Task<GuestVolume> CreateAndAttachAsync(VmTestHost g, IGuestCsi plugin, string name, string media, long bytes,
        VolumeCapability? capability = null, IDictionary<string, string>? parameters = null, VolumeContentSource? source = null)
    {
        var volume = await CreateAsync(g, plugin, name, bytes, capability ?? Ext4(),
            new Dictionary<string, string>(parameters ?? new Dictionary<string, string>()) { ["media"] = media }, source);
        await volume.ControllerPublishAsync();
        await volume.AttachAsync();
        return volume;
    }

    /// <summary>The same volume as another node (or pod) sees it: its own staging path and target, named after <paramref name="otherName"/>.</summary>
    public GuestVolume On(IGuestCsi node, string otherName, VolumeCapability otherCapability, bool readOnly) =>
        new(g, node, otherName, Volume, otherCapability) { ReadOnly = readOnly };

    public async Task ControllerPublishAsync()
    {
        var publish = await plugin.Controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
        {
            VolumeId = Id, NodeId = plugin.NodeId, VolumeCapability = Capability, Readonly = ReadOnly,
        }, deadline: Deadline());
        _publishContext = publish.PublishContext;
    }

    public Task ControllerUnpublishAsync() =>
        plugin.Controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = Id, NodeId = plugin.NodeId },
            deadline: Deadline()).ResponseAsync;

    public async Task StageAsync()
    {
        // kubelet creates the staging directory.
        await g.RunOkAsync($"mkdir -p {Staging}");
        await plugin.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
        {
            VolumeId = Id, StagingTargetPath = Staging, VolumeCapability = Capability, PublishContext = { _publishContext },
            VolumeContext = { Volume.VolumeContext },
        }, deadline: Deadline());
    }

    public async Task PublishAsync(string? target = null)
    {
        target ??= Target;
        // kubelet creates the target's parent.
        await g.RunOkAsync($"mkdir -p {Path.GetDirectoryName(target)}");
        await plugin.Node.NodePublishVolumeAsync(new NodePublishVolumeRequest
        {
            VolumeId = Id, StagingTargetPath = Staging, TargetPath = target, VolumeCapability = Capability, Readonly = ReadOnly,
            PublishContext = { _publishContext }, VolumeContext = { Volume.VolumeContext },
        }, deadline: Deadline());
    }

    public async Task AttachAsync()
    {
        await StageAsync();
        await PublishAsync();
    }

    public Task UnstageAsync() =>
        plugin.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = Id, StagingTargetPath = Staging }, deadline: Deadline()).ResponseAsync;

    public Task UnpublishAsync(string? target = null) =>
        plugin.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = Id, TargetPath = target ?? Target }, deadline: Deadline()).ResponseAsync;

    /// <summary>NodeUnpublish of <see cref="Target"/>, NodeUnstage.</summary>
    public async Task DetachAsync()
    {
        await UnpublishAsync();
        await UnstageAsync();
    }

    public async Task<VolumeCondition> ConditionAsync() =>
        (await plugin.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = Id, VolumePath = Target }, deadline: Deadline()))
        .VolumeCondition;

    /// <summary>ControllerExpandVolume then NodeExpandVolume of the published volume, as the resizer and kubelet do; the node's answer.</summary>
    public async Task<long> GrowOnlineAsync(long bytes)
    {
        var grown = await plugin.Controller.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
        {
            VolumeId = Id, CapacityRange = new CapacityRange { RequiredBytes = bytes }, VolumeCapability = Capability,
        }, deadline: Deadline());
        Assert.True(grown.NodeExpansionRequired);
        var expanded = await plugin.Node.NodeExpandVolumeAsync(new NodeExpandVolumeRequest
        {
            VolumeId = Id, VolumePath = Target, StagingTargetPath = Staging, VolumeCapability = Capability,
            CapacityRange = new CapacityRange { RequiredBytes = grown.CapacityBytes },
        }, deadline: Deadline());
        return expanded.CapacityBytes;
    }

    public Task DeleteVolumeAsync() =>
        plugin.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = Id }, deadline: Deadline()).ResponseAsync;

    /// <summary>Detach, ControllerUnpublish, DeleteVolume.</summary>
    public async Task DeleteAsync()
    {
        await DetachAsync();
        await ControllerUnpublishAsync();
        await DeleteVolumeAsync();
    }
}
