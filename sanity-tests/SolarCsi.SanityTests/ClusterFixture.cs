using Csi.V1;
using SolarCsi.Core.Ids;
using SolarCsi.Local;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace SolarCsi.SanityTests;

/// <summary>One controller and two node plugins, shared by the whole suite, started as a CO would find them.</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public const string NodeA = "node-a";
    public const string NodeB = "node-b";
    private readonly string _root = Directory.CreateTempSubdirectory("solar-sanity-").FullName;

    public LocalCluster Cluster { get; private set; } = null!;
    public Csi.V1.Controller.ControllerClient Controller => Cluster.Controller.Controller;
    public Identity.IdentityClient ControllerIdentity => Cluster.Controller.Identity;
    public NodePlugin A => Cluster.Nodes[0];
    public NodePlugin B => Cluster.Nodes[1];

    /// <summary>Where the storage host of an NBD volume keeps its export (pid file, keys, limit files).</summary>
    public string ExportDirOf(string volumeId) => Cluster.ExportDirOf(volumeId);

    /// <summary>A node that does not hold the volume, so an NBD volume's data really crosses the network.</summary>
    public NodePlugin ConsumerAcross(Volume volume) => Cluster.Nodes.First(n => n.NodeId != Core.Ids.StorageId.ParseVolume(volume.VolumeId).Node);

    /// <summary>The owning node's record of a volume (its pool's JSON file).</summary>
    public string RecordOf(string volumeId)
    {
        var id = Core.Ids.StorageId.ParseVolume(volumeId);
        return Path.Combine(Cluster.Nodes.Single(n => n.NodeId == id.Node).Directory, "state", "pools", id.Media, id.Pool, "volumes", id.Name + ".json");
    }

    public const long TmpfsPoolBytes = 512L << 20;
    /// <summary>node-b's attach limit, low enough for a test to reach it.</summary>
    public const int NodeBMaxVolumes = 4;
    public const long DiskMinBytes = 40L << 20;

    /// <summary>node-a's spare disks for its disk pool: three blank, one with somebody's filesystem, one too small.</summary>
    public TestDisks Disks { get; } = new();
    public IReadOnlyList<string> BlankDisks { get; private set; } = [];
    public string ForeignDisk { get; private set; } = "";
    public string SmallDisk { get; private set; } = "";

    public async Task InitializeAsync()
    {
        BlankDisks = [Disks.Add("d64", 64L << 20), Disks.Add("d96", 96L << 20), Disks.Add("d128", 128L << 20)];
        ForeignDisk = Disks.Add("foreign160", 160L << 20, foreignFs: "ext4");
        SmallDisk = Disks.Add("small16", 16L << 20);
        var disks = string.Join(", ", BlankDisks.Append(ForeignDisk).Append(SmallDisk).Select(d => $"\"{d}\""));
        var pools = $$"""
            {
              "tmpfs": [ { "name": "default", "capacity": "{{TmpfsPoolBytes}}" } ],
              "disk": [ { "name": "default", "paths": [ {{disks}} ], "minSize": "{{DiskMinBytes}}" } ]
            }
            """;
        try
        {
            // The nodes' state on xfs with reflink, as docs/deploy.md asks of a node: the file and nbd pools cut a
            // snapshot of a volume in use by reflink, holding its writers for milliseconds (refused on ext4).
            Disks.MountXfs(_root, 32L << 30);
            Cluster = await LocalCluster.StartAsync(_root, [NodeA, NodeB], poolsConfig: new Dictionary<string, string> { [NodeA] = pools },
                nodeArgs: new Dictionary<string, IReadOnlyList<string>> { [NodeB] = ["--max-volumes", NodeBMaxVolumes.ToString()] });
        }
        catch
        {
            Disks.Dispose();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        var leftovers = await Cluster.FindLeftoversAsync();
        try
        {
            await Cluster.DisposeAsync();
        }
        finally
        {
            // SOLAR_KEEP_LOGS=1 keeps the plugins' logs and state for a post-mortem (and their filesystem mounted).
            // Otherwise the disks go even when stopping the plugins failed (they are this machine's loop devices),
            // the state's filesystem with them, then its mount point.
            if (Environment.GetEnvironmentVariable("SOLAR_KEEP_LOGS") != "1")
            {
                Disks.Dispose();
                Directory.Delete(_root, recursive: true);
            }
        }
        // Every test cleans up after itself; anything still mounted here is a leak in the driver or a test.
        if (!leftovers.IsEmpty) throw new InvalidOperationException($"the suite left {leftovers}");
    }

    public string NewStagingPath() => KubeletPaths.NewStaging(Cluster.KubeletDir);
    public string NewTargetPath() => KubeletPaths.NewTarget(Cluster.KubeletDir);

    public static VolumeCapability Mount(string fsType = "ext4", AccessMode mode = AccessMode.SingleNodeWriter) => new()
    {
        Mount = new VolumeCapability.Types.MountVolume { FsType = fsType },
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = mode },
    };

    public static VolumeCapability Block(AccessMode mode = AccessMode.SingleNodeWriter) => new()
    {
        Block = new VolumeCapability.Types.BlockVolume(),
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = mode },
    };

    public static TopologyRequirement On(string nodeId)
    {
        var t = new TopologyRequirement();
        t.Requisite.Add(new Topology { Segments = { NodeTopology.Of(nodeId) } });
        t.Preferred.Add(new Topology { Segments = { NodeTopology.Of(nodeId) } });
        return t;
    }

    public static CreateVolumeRequest NewVolume(long bytes = 64 << 20, VolumeCapability? capability = null, string node = NodeA, string? name = null) => new()
    {
        Name = name ?? "pvc-" + Guid.NewGuid().ToString("N"),
        CapacityRange = new CapacityRange { RequiredBytes = bytes },
        VolumeCapabilities = { capability ?? Mount() },
        AccessibilityRequirements = On(node),
    };

    /// <summary>A volume of <paramref name="media"/>: local media on node-a, remote (NBD) ones with no topology.</summary>
    public static CreateVolumeRequest NewVolumeOf(string media, long bytes, VolumeCapability capability)
    {
        var request = NewVolume(bytes, capability);
        request.Parameters["media"] = media;
        if (!Core.Media.MediaCatalog.Of(media).IsLocal) request.AccessibilityRequirements = null;
        return request;
    }

    public async Task<Volume> CreateAsync(CreateVolumeRequest request) => (await Controller.CreateVolumeAsync(request)).Volume;

    public async Task DeleteAsync(string volumeId) => await Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volumeId });
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
