using System.Collections.Concurrent;
using Csi.V1;
using SolarCsi.Local;

namespace SolarCsi.SanityTests;

/// <summary>
/// Scale is correctness: 128 NBD volumes on one storage host, created, published, staged (ext4) and published on one
/// consumer with 16 in flight, then torn down the same way — every call succeeds and nothing is left (mounts, loop
/// devices, nbdkit/nbdfuse processes, volumes, journal entries). Its own cluster, so no other test's volumes count
/// against the consumer's attach limit. The figures (rates, latencies, memory) are bench-nbd-scale's (bench/).
/// </summary>
public sealed class NbdScaleTests : IAsyncLifetime
{
    private const string Storage = "storage", Consumer = "consumer";
    private const int Volumes = 128, InFlight = 16;
    private readonly string _root = Directory.CreateTempSubdirectory("solar-nbd-scale-").FullName;
    private LocalCluster _cluster = null!;

    public async Task InitializeAsync() =>
        _cluster = await LocalCluster.StartAsync(_root, [Storage, Consumer], nbdFirstPort: 22800, nodeArgs: new Dictionary<string, IReadOnlyList<string>>
        {
            // Every volume on the storage host: the consumer's pools have no room for one.
            [Storage] = ["--file-pool-capacity", "16Gi"],
            [Consumer] = ["--file-pool-capacity", "1Mi", "--max-volumes", "256"],
        });

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task HundredsOfNbdVolumesGoUpAndDownWithManyInFlightAndLeaveNothing()
    {
        var capability = ClusterFixture.Mount();
        var consumer = _cluster.Nodes.Single(n => n.NodeId == Consumer);
        var steps = new ConcurrentBag<(Volume Volume, NodeSteps Steps)>();
        var errors = new ConcurrentBag<string>();
        await InParallelAsync(Enumerable.Range(0, Volumes), async i =>
        {
            var volume = (await _cluster.Controller.Controller.CreateVolumeAsync(new CreateVolumeRequest
            {
                Name = $"scale-{i}", CapacityRange = new CapacityRange { RequiredBytes = 64 << 20 }, VolumeCapabilities = { capability },
                Parameters = { ["media"] = "nbd" },
            })).Volume;
            var s = new NodeSteps(_cluster, volume, capability, consumer);
            steps.Add((volume, s));
            await s.ControllerPublishAsync();
            await s.AttachAsync();
        }, errors);
        Assert.Empty(errors);
        Assert.All(steps, s => Assert.Equal(Storage, s.Volume.VolumeId.Split('~')[2]));
        Assert.Equal(Volumes, _cluster.HelperProcesses().Count(pid => SolarCsi.Node.Processes.Pid.CommandLine(pid)?[0].EndsWith("nbdfuse") == true));

        await InParallelAsync(steps, async s =>
        {
            await s.Steps.UnpublishAsync();
            await s.Steps.UnstageAsync();
            await s.Steps.ControllerUnpublishAsync();
            await _cluster.Controller.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = s.Volume.VolumeId });
        }, errors);
        Assert.Empty(errors);
        var leftovers = await _cluster.FindLeftoversAsync();
        Assert.True(leftovers.IsEmpty, leftovers.ToString());
        Assert.Empty((await _cluster.Controller.Controller.ListVolumesAsync(new ListVolumesRequest())).Entries);
    }

    private static async Task InParallelAsync<T>(IEnumerable<T> items, Func<T, Task> work, ConcurrentBag<string> errors)
    {
        using var gate = new SemaphoreSlim(InFlight);
        await Task.WhenAll(items.Select(async item =>
        {
            await gate.WaitAsync();
            try { await work(item); }
            catch (Exception e) { errors.Add($"{item}: {e.Message}"); }
            finally { gate.Release(); }
        }));
    }
}
