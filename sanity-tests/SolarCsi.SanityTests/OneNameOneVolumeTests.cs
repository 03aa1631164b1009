using Csi.V1;
using SolarCsi.Core.Hosting;

namespace SolarCsi.SanityTests;

/// <summary>
/// A volume's record is written last, so a create still running was invisible to the name lookup that makes
/// CreateVolume idempotent: a controller that restarted mid-create (or a second controller) could place the retry on
/// another node. The agent now answers "being created" for a name whose create holds its slot.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class OneNameOneVolumeTests(ClusterFixture fx)
{
    [Fact]
    public async Task ANameBeingCreatedNeverLooksFree()
    {
        var source = await fx.CreateAsync(ClusterFixture.NewVolume(256L << 20));
        var clone = ClusterFixture.NewVolume(256L << 20);
        clone.VolumeContentSource = new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = source.VolumeId } };
        string? cloneId = null;
        try
        {
            // Real data, so the clone's copy takes a moment.
            var block = new byte[1 << 20];
            Random.Shared.NextBytes(block);
            await using (var image = new FileStream(Path.ChangeExtension(fx.RecordOf(source.VolumeId), ".img"), FileMode.Open, FileAccess.Write))
                for (var i = 0; i < 200; i++) await image.WriteAsync(block);

            using var channel = fx.Cluster.AgentChannel(fx.A.NodeId);
            var agent = new Agent.V1.Agent.AgentClient(channel);
            var create = fx.Controller.CreateVolumeAsync(clone).ResponseAsync;
            var answers = new List<Agent.V1.FindVolumeByNameResponse>();
            while (!create.IsCompleted)
                answers.Add(await agent.FindVolumeByNameAsync(new Agent.V1.FindVolumeByNameRequest { Name = clone.Name }));
            cloneId = (await create).Volume.VolumeId;
            answers.Add(await agent.FindVolumeByNameAsync(new Agent.V1.FindVolumeByNameRequest { Name = clone.Name }));

            // Before the call reaches the agent the name is free there; from the moment the agent has it, it is
            // "being created" and then "found" — never free again. The copy takes long enough to be seen running.
            var taken = answers.FindIndex(a => a.Found || a.InProgress.Length > 0);
            Assert.True(taken >= 0);
            Assert.All(answers.Skip(taken), a => Assert.True(a.Found || a.InProgress.Length > 0, "the name looked free while its create ran"));
            Assert.Contains(answers, a => a.InProgress.Contains(clone.Name, StringComparison.Ordinal));
            Assert.True(answers[^1].Found);
            Assert.Equal(cloneId, answers[^1].Volume.VolumeId);
        }
        finally
        {
            if (cloneId is not null) await fx.DeleteAsync(cloneId);
            await fx.DeleteAsync(source.VolumeId);
        }
    }
}
