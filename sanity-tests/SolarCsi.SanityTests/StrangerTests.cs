using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Csi.V1;
using Grpc.Core;
using Grpc.Net.Client;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Hosting.Tls;

namespace SolarCsi.SanityTests;

/// <summary>
/// The security suite beside the bad-input one: a stranger on the node network (here: loopback, where this cluster's
/// control plane listens over TCP as a real one does) calls every plugin endpoint the way issue #14 found possible —
/// replaying a publication to get the writer's key, unpublishing and deleting a volume in use, freezing writers,
/// announcing a node with its own endpoint — with no certificate, a certificate of another CA, and a real node's
/// certificate used where only the controller may call. Each is refused, and the volume, its publication and the
/// controller's view of the node are as they were.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class StrangerTests(ClusterFixture fx) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("solar-stranger-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Strangers' TLS clients: each trusts any server (a stranger does not care who answers) and offers its certificate.</summary>
    private IEnumerable<(string Who, GrpcChannel Channel)> Strangers(GrpcEndpoint endpoint)
    {
        var otherCa = Path.Combine(_dir, "other-ca");
        if (!Directory.Exists(otherCa))
        {
            CertificateAuthority.Create(otherCa, TimeSpan.FromDays(1));
            CertificateAuthority.Issue(otherCa, ClusterTls.ControllerIdentity, Path.Combine(_dir, "fake-controller"), TimeSpan.FromDays(1));
            CertificateAuthority.Issue(otherCa, ClusterTls.NodeIdentity(fx.A.NodeId), Path.Combine(_dir, "fake-node-a"), TimeSpan.FromDays(1));
        }
        GrpcChannel Tls(X509Certificate2? certificate) => GrpcChannel.ForAddress($"https://127.0.0.1:{endpoint.Port}", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                    LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate!,
                },
            },
        });
        yield return ("plaintext", GrpcChannels.Create(endpoint));
        yield return ("TLS without a certificate", Tls(null));
        yield return ("another CA's controller", Tls(ClusterTls.Load(Path.Combine(_dir, "fake-controller")).Own));
        yield return ("another CA's node-a", Tls(ClusterTls.Load(Path.Combine(_dir, "fake-node-a")).Own));
        // A real node of this cluster, with its real certificate, is still not the controller.
        yield return ("node-b's own certificate", Tls(ClusterTls.Load(Path.Combine(fx.B.Directory, "tls"), Path.Combine(fx.Cluster.CaDir, ClusterTls.CaFile)).Own));
    }

    private static async Task<StatusCode> CodeOf(Func<Task> call)
    {
        try
        {
            await call();
            return StatusCode.OK;
        }
        catch (RpcException e) { return e.StatusCode; }
    }

    [Fact]
    public async Task NoStrangerDrivesAnAgent()
    {
        var capability = ClusterFixture.Mount();
        var volume = await fx.CreateAsync(ClusterFixture.NewVolumeOf("nbd", 64 << 20, capability));
        var host = Core.Ids.StorageId.ParseVolume(volume.VolumeId).Node;
        var writer = new NodeSteps(fx, volume, capability, fx.ConsumerAcross(volume));
        var agent = GrpcEndpoint.Parse(fx.Cluster.Nodes.Single(n => n.NodeId == host).AgentEndpoint);
        try
        {
            await writer.ControllerPublishAsync();
            await writer.AttachAsync();
            await File.WriteAllTextAsync(Path.Combine(writer.Target, "data"), "the writer's");
            var keysBefore = await File.ReadAllTextAsync(Path.Combine(fx.Cluster.ExportDirOf(volume.VolumeId), "keys.psk"));

            foreach (var (who, channel) in Strangers(agent))
                using (channel)
                {
                    var client = new Agent.V1.Agent.AgentClient(channel);
                    var replay = new Agent.V1.PublishVolumeRequest
                    {
                        VolumeId = volume.VolumeId,
                        Publication = new Agent.V1.Publication { NodeId = writer.NodeId, AccessMode = (int)capability.AccessMode.Mode },
                    };
                    replay.ConsumerAddresses.Add("127.0.0.1");
                    var attempts = new (string What, Func<Task> Call)[]
                    {
                        ("ListVolumes", async () => await client.ListVolumesAsync(new Agent.V1.ListVolumesRequest())),
                        ("GetCapacity", async () => await client.GetCapacityAsync(new Agent.V1.GetCapacityRequest())),
                        ("PublishVolume (replay)", async () => await client.PublishVolumeAsync(replay)),
                        ("UnpublishVolume", async () => await client.UnpublishVolumeAsync(new Agent.V1.UnpublishVolumeRequest { VolumeId = volume.VolumeId })),
                        ("DeleteVolume", async () => await client.DeleteVolumeAsync(new Agent.V1.DeleteVolumeRequest { VolumeId = volume.VolumeId })),
                        ("Freeze", async () => await client.FreezeAsync(new Agent.V1.FreezeRequest { Token = "t", VolumeIds = { volume.VolumeId }, LeaseSeconds = 600 })),
                    };
                    foreach (var (what, call) in attempts)
                        Assert.True(await CodeOf(call) != StatusCode.OK, $"{who}: {what} was answered");
                }

            // Nothing changed: the same keys, the writer still writes, the volume is still there and still published.
            Assert.Equal(keysBefore, await File.ReadAllTextAsync(Path.Combine(fx.Cluster.ExportDirOf(volume.VolumeId), "keys.psk")));
            await File.WriteAllTextAsync(Path.Combine(writer.Target, "after"), "still writing");
            var listed = await fx.Controller.ListVolumesAsync(new ListVolumesRequest());
            var entry = Assert.Single(listed.Entries, e => e.Volume.VolumeId == volume.VolumeId);
            Assert.Contains(writer.NodeId, entry.Status.PublishedNodeIds);
        }
        finally
        {
            await writer.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    [Fact]
    public async Task NoStrangerAnnouncesANodeOrGetsACertificate()
    {
        var registry = GrpcEndpoint.Parse(fx.Cluster.RegistryEndpoint);
        var topology = new Topology { Segments = { Core.Ids.NodeTopology.Of(fx.A.NodeId) } };
        var before = (await fx.Controller.GetCapacityAsync(new GetCapacityRequest { AccessibleTopology = topology })).AvailableCapacity;
        foreach (var (who, channel) in Strangers(registry))
            using (channel)
            {
                var client = new Agent.V1.Registry.RegistryClient(channel);
                // node-a "moved" to the stranger's own agent, with all the free space in the world.
                var forged = new Agent.V1.AgentAnnouncement { NodeId = fx.A.NodeId, Endpoint = "tcp://127.0.0.1:9", Version = "1", MaxVolumes = 1000 };
                forged.Pools.Add(new Agent.V1.PoolInfo { Name = "default", Media = "nbd", TotalBytes = 1L << 60, FreeBytes = 1L << 60 });
                forged.Topology.Add(Core.Ids.NodeTopology.Of(fx.A.NodeId));
                Assert.True(await CodeOf(async () => await client.HeartbeatAsync(forged)) != StatusCode.OK, $"{who}: a forged heartbeat was taken");
                var request = new Agent.V1.CertificateSigningRequest
                {
                    NodeId = "node-z", CsrPem = CertificateAuthority.CreateSigningRequest(ClusterTls.NodeIdentity("node-z")).RequestPem, BootstrapToken = "guess",
                };
                Assert.True(await CodeOf(async () => await client.IssueCertificateAsync(request)) != StatusCode.OK, $"{who}: a certificate was issued");
            }
        // Placement is as it was: node-a's capacity, from node-a's real agent.
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // a heartbeat interval, so a forged announcement would have had its turn
        var after = (await fx.Controller.GetCapacityAsync(new GetCapacityRequest { AccessibleTopology = topology })).AvailableCapacity;
        Assert.True(after < 1L << 59, $"node-a's capacity is {after}: a forged announcement reached placement");
        Assert.InRange(after, before - (1L << 30), before + (1L << 30));
        Assert.False(Directory.Exists(Path.Combine(fx.Cluster.Root, "controller", "state", "issued", "node-z")));
    }
}
