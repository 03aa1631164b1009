using System.Diagnostics;
using System.Security.Cryptography;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;
using SolarCsi.Local;
using SolarCsi.Node.Processes;
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
        DemoDisk? disk = null;
        try
        {
            var media = DemoMedia.Detect();
            foreach (var (name, reason) in media.Unavailable) Step($"{name}: not on this machine — {reason}");
            if (media.MissingTools.Count > 0)
                throw new InvalidOperationException($"host tools missing: {HostTools.Describe(media.MissingTools)}; run scripts/install-prereqs.sh --runtime first");
            // node-a also offers a 256 MiB tmpfs pool and one spare disk (a loop device standing in for a drive), as
            // its --pools-config would declare them.
            disk = await DemoDisk.CreateAsync(128L << 20);
            var pools = new Dictionary<string, string>
            {
                ["node-a"] = $$"""{ "tmpfs": [ { "name": "default", "capacity": "256Mi" } ], "disk": [ { "name": "default", "paths": [ "{{disk.Device}}" ], "minSize": "64Mi" } ] }""",
            };
            await using (var cluster = await LocalCluster.StartAsync(root, ["node-a", "node-b"], Step, poolsConfig: pools))
            {
                await WalkAsync(cluster, disk, Step);
                var leftovers = await cluster.FindLeftoversAsync();
                if (!leftovers.IsEmpty) { Step($"LEFT BEHIND: {leftovers}"); return 1; }
                Step("nothing left behind: no mounts, no loop devices, no NBD processes");
                Step("stopping plugins");
            }
            Console.WriteLine($"demo passed: {string.Join(", ", DemoMedia.Walked)} walked" +
                              (media.Unavailable.Count > 0 ? $"; {string.Join(", ", media.Unavailable.Select(u => u.Media))} need a kernel this machine lacks" : ""));
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
            if (disk is not null) await disk.DisposeAsync();
            if (!keep) Directory.Delete(root, recursive: true);
            else Console.WriteLine($"kept {root}");
        }
    }

    private static async Task WalkAsync(LocalCluster cluster, DemoDisk disk, Action<string> step)
    {
        step("— a local file volume on node-a —");
        await WalkLocalVolumeAsync(cluster, step, "file", 256L << 20);
        step("— a tmpfs volume on node-a, grown while mounted —");
        await WalkTmpfsVolumeAsync(cluster, step);
        step("— a whole spare disk of node-a as a volume, wiped on delete —");
        await WalkLocalVolumeAsync(cluster, step, "disk", 64L << 20);
        if (!await disk.IsBlankAsync()) throw new InvalidDataException($"{disk.Device} still carries a filesystem after its volume was deleted");
        step($"{disk.Device} is blank again: the next volume gets none of the old data");
        step("— a remote single-writer NBD volume, moved from node-a to node-b —");
        var shared = await WalkSingleWriterAsync(cluster, step);
        step("— the same volume served read-only to both nodes at once —");
        await WalkMultiReadAsync(cluster, shared, step);
        await cluster.Controller.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = shared.VolumeId });
        step($"deleted volume {shared.VolumeId}");
    }

    private static VolumeCapability Capability(AccessMode mode) => new()
    {
        Mount = new VolumeCapability.Types.MountVolume { FsType = "ext4" },
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = mode },
    };

    private static async Task WalkLocalVolumeAsync(LocalCluster cluster, Action<string> step, string media, long bytes)
    {
        DemoMedia.Walked.Add(media);
        var controller = cluster.Controller.Controller;
        var node = cluster.Nodes[0];
        var capability = Capability(AccessMode.SingleNodeWriter);
        var topology = new TopologyRequirement();
        topology.Requisite.Add(new Topology { Segments = { NodeTopology.Of(node.NodeId) } });
        topology.Preferred.Add(new Topology { Segments = { NodeTopology.Of(node.NodeId) } });
        var volume = (await controller.CreateVolumeAsync(new CreateVolumeRequest
        {
            Name = $"demo-{media}-" + Guid.NewGuid().ToString("N")[..8],
            CapacityRange = new CapacityRange { RequiredBytes = bytes },
            VolumeCapabilities = { capability },
            AccessibilityRequirements = topology,
            Parameters = { ["media"] = media },
        })).Volume;
        step($"created {media} volume {volume.VolumeId} ({volume.CapacityBytes >> 20} MiB) on {node.NodeId}");

        var payload = RandomNumberGenerator.GetBytes(8 << 20);
        var checksum = Convert.ToHexStringLower(SHA256.HashData(payload));
        var attachment = new Attachment(cluster, node, volume.VolumeId, capability, $"demo-{media}-pod");
        await attachment.AttachAsync(step);
        await File.WriteAllBytesAsync(Path.Combine(attachment.Target, "payload.bin"), payload);
        step($"wrote 8 MiB through the mount (sha256 {checksum[..16]}…)");
        await attachment.DetachAsync(step);

        await attachment.AttachAsync(step);
        await VerifyAsync(attachment, "payload.bin", checksum, step);
        await attachment.DetachAsync(step);

        await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        step($"deleted volume {volume.VolumeId}");
    }

    private static async Task WalkTmpfsVolumeAsync(LocalCluster cluster, Action<string> step)
    {
        DemoMedia.Walked.Add("tmpfs");
        var controller = cluster.Controller.Controller;
        var node = cluster.Nodes[0];
        var capability = new VolumeCapability
        {
            Mount = new VolumeCapability.Types.MountVolume { FsType = "tmpfs" },
            AccessMode = new VolumeCapability.Types.AccessMode { Mode = AccessMode.SingleNodeWriter },
        };
        var volume = (await controller.CreateVolumeAsync(new CreateVolumeRequest
        {
            Name = "demo-tmpfs-" + Guid.NewGuid().ToString("N")[..8],
            CapacityRange = new CapacityRange { RequiredBytes = 64L << 20 },
            VolumeCapabilities = { capability },
            Parameters = { ["media"] = "tmpfs" },
        })).Volume;
        step($"created tmpfs volume {volume.VolumeId} ({volume.CapacityBytes >> 20} MiB), accessible from {volume.AccessibleTopology[0].Segments.Values.Single()} only");
        var payload = RandomNumberGenerator.GetBytes(4 << 20);
        var checksum = Convert.ToHexStringLower(SHA256.HashData(payload));
        var attachment = new Attachment(cluster, node, volume.VolumeId, capability, "demo-cache");
        await attachment.AttachAsync(step);
        await File.WriteAllBytesAsync(Path.Combine(attachment.Target, "payload.bin"), payload);
        step($"wrote 4 MiB into memory (sha256 {checksum[..16]}…)");
        var grown = await controller.ControllerExpandVolumeAsync(new ControllerExpandVolumeRequest
        {
            VolumeId = volume.VolumeId, CapacityRange = new CapacityRange { RequiredBytes = 128L << 20 }, VolumeCapability = capability,
        });
        var size = SolarCsi.Node.Devices.FilesystemStats.Of(attachment.Target).TotalBytes;
        step($"expanded to {grown.CapacityBytes >> 20} MiB by remount (node step needed: {grown.NodeExpansionRequired}); the pod sees {size >> 20} MiB");
        await attachment.DetachAsync(step);
        await attachment.AttachAsync(step);
        await VerifyAsync(attachment, "payload.bin", checksum, step);
        await attachment.DetachAsync(step);
        await controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
        step($"deleted volume {volume.VolumeId}: its memory is released and its data gone");
    }

    private sealed record SharedVolume(string VolumeId, string Checksum);

    private static async Task<SharedVolume> WalkSingleWriterAsync(LocalCluster cluster, Action<string> step)
    {
        DemoMedia.Walked.Add("nbd");
        var controller = cluster.Controller.Controller;
        var capability = Capability(AccessMode.SingleNodeWriter);
        var volume = (await controller.CreateVolumeAsync(new CreateVolumeRequest
        {
            Name = "demo-nbd-" + Guid.NewGuid().ToString("N")[..8],
            CapacityRange = new CapacityRange { RequiredBytes = 256L << 20 },
            VolumeCapabilities = { capability },
            Parameters = { ["media"] = "nbd" },
        })).Volume;
        step($"created NBD volume {volume.VolumeId}: its image lives on {volume.VolumeId.Split('~')[2]}, reachable from every node");

        var payload = RandomNumberGenerator.GetBytes(16 << 20);
        var checksum = Convert.ToHexStringLower(SHA256.HashData(payload));
        var onA = new Attachment(cluster, cluster.Nodes[0], volume.VolumeId, capability, "writer-on-a");
        await onA.AttachAsync(step);
        await File.WriteAllBytesAsync(Path.Combine(onA.Target, "payload.bin"), payload);
        step($"node-a wrote 16 MiB over NBD (sha256 {checksum[..16]}…)");

        var onB = new Attachment(cluster, cluster.Nodes[1], volume.VolumeId, capability, "writer-on-b");
        try
        {
            await onB.AttachAsync(step);
            throw new InvalidOperationException("a second writer was admitted");
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition)
        {
            step("node-b is refused while node-a holds the volume (FAILED_PRECONDITION)");
        }
        await onA.DetachAsync(step);
        step("node-a released the volume; the export revoked its key");
        await onB.AttachAsync(step);
        await VerifyAsync(onB, "payload.bin", checksum, step);
        await onB.DetachAsync(step);
        return new SharedVolume(volume.VolumeId, checksum);
    }

    private static async Task WalkMultiReadAsync(LocalCluster cluster, SharedVolume volume, Action<string> step)
    {
        var capability = Capability(AccessMode.MultiNodeReaderOnly);
        var readers = cluster.Nodes.Select(n => new Attachment(cluster, n, volume.VolumeId, capability, "reader-on-" + n.NodeId)).ToArray();
        foreach (var reader in readers) await reader.AttachAsync(step, readOnly: true);
        foreach (var reader in readers) await VerifyAsync(reader, "payload.bin", volume.Checksum, step);
        try
        {
            await File.WriteAllTextAsync(Path.Combine(readers[0].Target, "nope"), "x");
            throw new InvalidOperationException("a read-only mount accepted a write");
        }
        catch (IOException)
        {
            step("writes through a reader fail (read-only at the node and at the export)");
        }
        foreach (var reader in readers) await reader.DetachAsync(step);
    }

    private static async Task VerifyAsync(Attachment attachment, string file, string checksum, Action<string> step)
    {
        var readBack = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(attachment.Target, file))));
        if (readBack != checksum) throw new InvalidDataException($"data changed: {readBack} != {checksum}");
        step($"{attachment.Node.NodeId} read the data back: checksum matches");
    }

    /// <summary>One volume on one node, attached and detached in kubelet's order.</summary>
    private sealed class Attachment(LocalCluster cluster, NodePlugin node, string volumeId, VolumeCapability capability, string pod)
    {
        private readonly Csi.V1.Controller.ControllerClient _controller = cluster.Controller.Controller;
        public NodePlugin Node => node;
        public string Staging { get; } = Path.Combine(cluster.KubeletDir, "plugins", "staging", node.NodeId, volumeId);
        public string Target { get; } = Path.Combine(cluster.KubeletDir, "pods", pod, "volumes", "data");

        public async Task AttachAsync(Action<string> step, bool readOnly = false)
        {
            var published = await _controller.ControllerPublishVolumeAsync(new ControllerPublishVolumeRequest
            {
                VolumeId = volumeId, NodeId = node.NodeId, VolumeCapability = capability, Readonly = readOnly,
            });
            step($"controller-published to {node.NodeId}{(readOnly ? " (read-only)" : "")}");
            Directory.CreateDirectory(Staging);
            await node.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
            {
                VolumeId = volumeId, StagingTargetPath = Staging, VolumeCapability = capability, PublishContext = { published.PublishContext },
            });
            step($"staged on {node.NodeId}");
            await node.Node.NodePublishVolumeAsync(new NodePublishVolumeRequest
            {
                VolumeId = volumeId, StagingTargetPath = Staging, TargetPath = Target, VolumeCapability = capability, Readonly = readOnly,
                PublishContext = { published.PublishContext },
            });
            step($"published at {Target}");
        }

        public async Task DetachAsync(Action<string> step)
        {
            await node.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volumeId, TargetPath = Target });
            await node.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volumeId, StagingTargetPath = Staging });
            await _controller.ControllerUnpublishVolumeAsync(new ControllerUnpublishVolumeRequest { VolumeId = volumeId, NodeId = node.NodeId });
            step($"unpublished, unstaged and controller-unpublished on {node.NodeId}");
        }
    }
}
