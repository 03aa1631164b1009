using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Diagnostics;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Ids;
using SolarCsi.Local;

namespace SolarCsi.SanityTests;

/// <summary>
/// One name is one volume whatever fails: an agent that goes silent mid-create, a controller restarted meanwhile, a
/// retry that arrives then — and when claims were lost anyway, the second volume is found and reported. Its own
/// cluster: these tests stop plugins and restart the controller.
/// </summary>
public sealed class OneNameAfterFaultsTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("solar-names-").FullName;
    private LocalCluster _cluster = null!;

    private Csi.V1.Controller.ControllerClient C => _cluster.Controller.Controller;

    public async Task InitializeAsync() =>
        _cluster = await LocalCluster.StartAsync(_root, [ClusterFixture.NodeA, ClusterFixture.NodeB], nbdFirstPort: 21800);

    public async Task DisposeAsync()
    {
        foreach (var node in _cluster?.Nodes ?? [])
            HostCommand.Quietly("kill", "-CONT", _cluster!.ProcessIdOf(node.NodeId).ToString());
        if (_cluster is not null) await _cluster.DisposeAsync();
        if (Environment.GetEnvironmentVariable("SOLAR_KEEP_LOGS") != "1") Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task ARetryWhileTheNodeThatGotTheNameIsSilentWaitsForItEvenAcrossAControllerRestart()
    {
        // Whichever node the create goes to hangs inside it, after its slot is taken and before its record is written.
        foreach (var node in _cluster.Nodes)
        {
            await _cluster.RestartNodeAsync(node.NodeId, environment: new Dictionary<string, string> { [FaultPoints.Variable] = "stop:agent:create" });
            await _cluster.WaitForAgentAsync(node.NodeId);
        }
        try
        {
            await SilentDuringCreateAsync();
        }
        finally
        {
            // Disarmed again for whatever runs next on this cluster.
            foreach (var node in _cluster.Nodes)
            {
                HostCommand.Quietly("kill", "-CONT", _cluster.ProcessIdOf(node.NodeId).ToString());
                await _cluster.RestartNodeAsync(node.NodeId);
                await _cluster.WaitForAgentAsync(node.NodeId);
            }
        }
    }

    private async Task SilentDuringCreateAsync()
    {
        var request = OnEitherNode();
        var first = await Assert.ThrowsAsync<RpcException>(() => C.CreateVolumeAsync(request, deadline: DateTime.UtcNow.AddSeconds(3)).ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, first.StatusCode);
        var silent = _cluster.Nodes.Single(n => HostCommand.ProcessState(_cluster.ProcessIdOf(n.NodeId)) == 'T');
        var other = _cluster.Nodes.Single(n => n != silent);

        await _cluster.RestartControllerAsync();
        var retry = await Assert.ThrowsAsync<RpcException>(() => C.CreateVolumeAsync(request, deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, retry.StatusCode);
        Assert.Contains(silent.NodeId, retry.Status.Detail);
        // The other node was never asked to create it (it would have hung too, and it knows nothing of the name).
        Assert.NotEqual('T', HostCommand.ProcessState(_cluster.ProcessIdOf(other.NodeId)));
        Assert.False((await FindOnAsync(other, request.Name)).Found);

        // Back: the create it was running finishes, and the CO's retry gets that very volume.
        HostCommand.Run("kill", "-CONT", _cluster.ProcessIdOf(silent.NodeId).ToString());
        await _cluster.WaitForAgentAsync(silent.NodeId);
        var volume = await CreateWithRetriesAsync(request);
        Assert.Equal(silent.NodeId, StorageId.ParseVolume(volume.VolumeId).Node);
        Assert.Equal(volume.VolumeId, (await FindOnAsync(silent, request.Name)).Volume.VolumeId);
        Assert.False((await FindOnAsync(other, request.Name)).Found);
        await C.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volume.VolumeId });
    }

    [Fact]
    public async Task ASecondVolumeLeftBehindWhenClaimsWereLostIsReportedAsAnOrphan()
    {
        var request = OnEitherNode();
        var original = (await C.CreateVolumeAsync(request)).Volume;
        var holder = _cluster.Nodes.Single(n => n.NodeId == StorageId.ParseVolume(original.VolumeId).Node);
        var other = _cluster.Nodes.Single(n => n != holder);
        string? second = null;
        try
        {
            // The holder goes silent, and a new controller starts without the claims (a rescheduled pod's empty dir).
            HostCommand.Run("kill", "-STOP", _cluster.ProcessIdOf(holder.NodeId).ToString());
            Directory.Delete(Path.Combine(_root, "controller", "state", "claims"), recursive: true);
            await _cluster.RestartControllerAsync();
            // The CO's retry (its first answer lost) now lands on the only node that answers.
            second = (await C.CreateVolumeAsync(request)).Volume.VolumeId;
            Assert.Equal(other.NodeId, StorageId.ParseVolume(second).Node);

            HostCommand.Run("kill", "-CONT", _cluster.ProcessIdOf(holder.NodeId).ToString());
            await _cluster.WaitForAgentAsync(holder.NodeId);
            // The holder's return triggers a sweep: its copy is the one no claim names.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            ListVolumesResponse.Types.Entry? entry;
            while (true)
            {
                var listed = await C.ListVolumesAsync(new ListVolumesRequest());
                entry = listed.Entries.SingleOrDefault(e => e.Volume.VolumeId == original.VolumeId);
                if (entry?.Status.VolumeCondition.Abnormal == true) break;
                Assert.True(DateTime.UtcNow < deadline, "the returning node's copy was never reported");
                await Task.Delay(200);
            }
            Assert.Contains("orphan", entry.Status.VolumeCondition.Message);
            Assert.Contains(second, entry.Status.VolumeCondition.Message);
            var listedSecond = (await C.ListVolumesAsync(new ListVolumesRequest())).Entries.Single(e => e.Volume.VolumeId == second);
            Assert.False(listedSecond.Status.VolumeCondition.Abnormal);
            Assert.Equal(1, (await MetricsScrape.ReadAsync(_cluster.Controller.MetricsUrl))["solar_orphan_volumes"]);
            Assert.Contains($"orphan volume {original.VolumeId}", await File.ReadAllTextAsync(Path.Combine(_root, "logs", "controller.log")));
        }
        finally
        {
            HostCommand.Quietly("kill", "-CONT", _cluster.ProcessIdOf(holder.NodeId).ToString());
            await _cluster.WaitForAgentAsync(holder.NodeId);
            await C.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = original.VolumeId });
            if (second is not null) await C.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = second });
        }
    }

    /// <summary>A file volume either node may hold, so nothing but the driver stops a retry from landing on the other one.</summary>
    private static CreateVolumeRequest OnEitherNode()
    {
        var request = ClusterFixture.NewVolumeOf("file", 64 << 20, ClusterFixture.Mount());
        request.AccessibilityRequirements = new TopologyRequirement();
        foreach (var node in new[] { ClusterFixture.NodeA, ClusterFixture.NodeB })
            request.AccessibilityRequirements.Requisite.Add(new Topology { Segments = { NodeTopology.Of(node) } });
        return request;
    }

    private async Task<Volume> CreateWithRetriesAsync(CreateVolumeRequest request)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try { return (await C.CreateVolumeAsync(request, deadline: DateTime.UtcNow.AddSeconds(20))).Volume; }
            catch (RpcException e) when (e.StatusCode is StatusCode.Aborted or StatusCode.Unavailable && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    private async Task<Agent.V1.FindVolumeByNameResponse> FindOnAsync(NodePlugin node, string name)
    {
        using var channel = _cluster.AgentChannel(node.NodeId);
        return await new Agent.V1.Agent.AgentClient(channel).FindVolumeByNameAsync(new Agent.V1.FindVolumeByNameRequest { Name = name });
    }
}
