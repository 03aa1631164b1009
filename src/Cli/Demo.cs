using System.Diagnostics;
using System.Security.Cryptography;
using Csi.V1;
using SolarCsi.Core.Ids;
using SolarCsi.Core.Local;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.Cli;

/// <summary>
/// The README's main command: a volume's whole life through the real plugins, as a CO would drive it, with
/// data written, the volume detached and re-attached, and the data verified.
/// </summary>
public static class Demo
{
    public static async Task<int> RunAsync(string[] args)
    {
        var keep = args.Contains("--keep");
        var root = Directory.CreateTempSubdirectory("solar-demo-").FullName;
        var clock = Stopwatch.StartNew();
        void Step(string text) => Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.00}s] {text}");
        try
        {
            await using (var cluster = await LocalCluster.StartAsync(root, ["node-a", "node-b"], Step))
            {
                await WalkAsync(cluster, Step);
                var leftovers = await cluster.FindLeftoversAsync();
                if (!leftovers.IsEmpty) { Step($"LEFT BEHIND: {leftovers}"); return 1; }
                Step("nothing left behind: no mounts, no loop devices");
                Step("stopping plugins");
            }
            Console.WriteLine("demo passed");
            return 0;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"demo failed: {e.Message}\nplugin logs: {root}/logs");
            keep = true;
            return 1;
        }
        finally
        {
            if (!keep) Directory.Delete(root, recursive: true);
            else Console.WriteLine($"kept {root}");
        }
    }

    private static async Task WalkAsync(LocalCluster cluster, Action<string> step)
    {
        var controller = cluster.Controller.Controller;
        var node = cluster.Nodes[0];
        var capability = new VolumeCapability
        {
            Mount = new VolumeCapability.Types.MountVolume { FsType = "ext4" },
            AccessMode = new VolumeCapability.Types.AccessMode { Mode = AccessMode.SingleNodeWriter },
        };
        var topology = new TopologyRequirement();
        topology.Requisite.Add(new Topology { Segments = { NodeTopology.Of(node.NodeId) } });
        topology.Preferred.Add(new Topology { Segments = { NodeTopology.Of(node.NodeId) } });

        var create = new CreateVolumeRequest
        {
            Name = "demo-pvc-" + Guid.NewGuid().ToString("N")[..8],
            CapacityRange = new CapacityRange { RequiredBytes = 256L << 20 },
            VolumeCapabilities = { capability },
            AccessibilityRequirements = topology,
        };
        var volume = (await controller.CreateVolumeAsync(create)).Volume;
        step($"created volume {volume.VolumeId} ({volume.CapacityBytes >> 20} MiB) on {node.NodeId}");

        var staging = Path.Combine(cluster.KubeletDir, "plugins", "staging", volume.VolumeId);
        var target = Path.Combine(cluster.KubeletDir, "pods", "demo-pod", "volumes", "data");
        var payload = RandomNumberGenerator.GetBytes(8 << 20);
        var checksum = Convert.ToHexStringLower(SHA256.HashData(payload));

        await AttachAsync(controller, node, volume.VolumeId, capability, staging, target, step);
        await File.WriteAllBytesAsync(Path.Combine(target, "payload.bin"), payload);
        step($"wrote 8 MiB through the mount (sha256 {checksum[..16]}…)");
        await DetachAsync(controller, node, volume.VolumeId, staging, target, step);

        await AttachAsync(controller, node, volume.VolumeId, capability, staging, target, step);
        var readBack = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(target, "payload.bin"))));
        if (readBack != checksum) throw new InvalidDataException($"data changed across detach/attach: {readBack} != {checksum}");
        step("read the data back after re-attaching: checksum matches");
        await DetachAsync(controller, node, volume.VolumeId, staging, target, step);

        await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        step($"deleted volume {volume.VolumeId}");
    }

    private static async Task AttachAsync(Controller.ControllerClient controller, NodePlugin node, string volumeId, VolumeCapability capability,
        string staging, string target, Action<string> step)
    {
        var published = await controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
        {
            VolumeId = volumeId, NodeId = node.NodeId, VolumeCapability = capability,
        });
        step($"controller-published to {node.NodeId}");
        Directory.CreateDirectory(staging);
        await node.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
        {
            VolumeId = volumeId, StagingTargetPath = staging, VolumeCapability = capability, PublishContext = { published.PublishContext },
        });
        step($"staged at {staging}");
        await node.Node.NodePublishVolumeAsync(new NodePublishVolumeRequest
        {
            VolumeId = volumeId, StagingTargetPath = staging, TargetPath = target, VolumeCapability = capability,
            PublishContext = { published.PublishContext },
        });
        step($"published at {target}");
    }

    private static async Task DetachAsync(Controller.ControllerClient controller, NodePlugin node, string volumeId, string staging, string target,
        Action<string> step)
    {
        await node.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volumeId, TargetPath = target });
        step("unpublished");
        await node.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volumeId, StagingTargetPath = staging });
        step("unstaged (unmounted, loop device detached)");
        await controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volumeId, NodeId = node.NodeId });
        step("controller-unpublished");
    }
}
