using System.Security.Cryptography;
using System.Text.Json;
using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Ids;

namespace SolarCsi.SanityTests;

/// <summary>
/// A state file that cannot be read (a torn write, a full disk, a hand edit) never stops the node plugin and never
/// costs data: it is set aside, the volume it described stays listed as abnormal and is neither re-created over
/// nor deleted, the rest is served, and only `solar cleanup --apply` removes what it described.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class UnreadableStateTests(ClusterFixture fx)
{
    [Fact]
    public async Task ACorruptRecordIsSetAsideTheRestIsServedAndNothingIsDeletedUntilAnOperatorSaysSo()
    {
        var capability = ClusterFixture.Mount();
        var damagedRequest = ClusterFixture.NewVolume(16L << 20, capability);
        var damaged = await fx.CreateAsync(damagedRequest);
        var healthy = await fx.CreateAsync(ClusterFixture.NewVolume(16L << 20, capability));
        var payload = RandomNumberGenerator.GetBytes(1 << 20);
        var healthySteps = new NodeSteps(fx, healthy, capability);
        var record = fx.RecordOf(damaged.VolumeId);
        var image = Path.ChangeExtension(record, ".img");
        var state = Path.Combine(fx.A.Directory, "state");
        var strays = new[]
        {
            Path.Combine(state, "node", "journal", "file~default~node-a~v000000000000000000000000.json"),
            Path.Combine(state, "exports", "nbd~default~node-a~v000000000000000000000000", "export.json"),
            Path.Combine(state, "groups", "records", "g000000000000000000000000.json"),
        };
        try
        {
            await healthySteps.AttachAsync();
            await File.WriteAllBytesAsync(Path.Combine(healthySteps.Target, "data.bin"), payload);
            await healthySteps.DetachQuietlyAsync();
            await File.WriteAllBytesAsync(image, payload); // what the damaged volume holds

            // Torn and wrong-shaped files in every kind of state the node keeps, then a restart.
            await File.WriteAllTextAsync(record, "{\"volumeId\": \"trunc");
            foreach (var stray in strays)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(stray)!);
                await File.WriteAllTextAsync(stray, stray.Contains("groups") ? "{ not json" : "{}");
            }
            await RestartNodeAAsync();

            // Listed, abnormal, with what to do; the data stays where it was.
            var listed = (await fx.Controller.ListVolumesAsync(new ListVolumesRequest())).Entries.Single(e => e.Volume.VolumeId == damaged.VolumeId);
            Assert.True(listed.Status.VolumeCondition.Abnormal);
            Assert.Contains("solar cleanup", listed.Status.VolumeCondition.Message);
            var got = await fx.Controller.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = damaged.VolumeId });
            Assert.True(got.Status.VolumeCondition.Abnormal);
            Assert.True(File.Exists(record + ".unreadable"));
            Assert.Equal(payload, await File.ReadAllBytesAsync(image));
            foreach (var stray in strays) Assert.True(File.Exists(stray + ".unreadable"), $"{stray} was not set aside");

            // Neither created over nor deleted by the CO.
            Assert.Contains("unreadable", (await Expect.Code(StatusCode.FailedPrecondition, async () => await fx.Controller.CreateVolumeAsync(damagedRequest))).Status.Detail);
            await Expect.Code(StatusCode.FailedPrecondition, async () => await fx.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = damaged.VolumeId }));
            Assert.Equal(payload, await File.ReadAllBytesAsync(image));

            // Everything else is served as before.
            await healthySteps.AttachAsync();
            Assert.Equal(payload, await File.ReadAllBytesAsync(Path.Combine(healthySteps.Target, "data.bin")));
            await healthySteps.DetachQuietlyAsync();
            Assert.True(await MetricsScrape.ValueAsync(fx.A.MetricsUrl, "solar_state_files_unreadable") >= 4);

            // The operator sees it, a dry run changes nothing, --apply removes the volume's image and the set-aside files.
            using (var report = JsonDocument.Parse(await OperatorCliTests.SolarAsync("node-state", "--state-dir", state, "--output", "json")))
            {
                var kinds = report.RootElement.GetProperty("findings").EnumerateArray()
                    .Select(f => (f.GetProperty("kind").GetString(), f.GetProperty("volumeId").GetString())).ToArray();
                Assert.Contains(("unreadable-state-file", StorageId.ParseVolume(damaged.VolumeId).Name), kinds);
                Assert.Equal(4, kinds.Count(k => k.Item1 == "unreadable-state-file"));
            }
            await OperatorCliTests.SolarAsync("cleanup", "--state-dir", state);
            Assert.True(File.Exists(image));
            await OperatorCliTests.SolarAsync("cleanup", "--state-dir", state, "--apply");
            Assert.False(File.Exists(image));
            Assert.False(File.Exists(record + ".unreadable"));
            foreach (var stray in strays) Assert.False(File.Exists(stray + ".unreadable"));

            // Gone for good: the name can be used again, and the new volume starts empty.
            Assert.DoesNotContain((await fx.Controller.ListVolumesAsync(new ListVolumesRequest())).Entries, e => e.Volume.VolumeId == damaged.VolumeId);
            var again = await fx.CreateAsync(damagedRequest);
            Assert.Equal(damaged.VolumeId, again.VolumeId);
        }
        finally
        {
            await healthySteps.DetachQuietlyAsync();
            foreach (var stray in strays)
            {
                if (File.Exists(stray + ".unreadable")) File.Delete(stray + ".unreadable");
                if (File.Exists(stray)) File.Delete(stray);
            }
            if (File.Exists(record + ".unreadable")) File.Delete(record + ".unreadable");
            await fx.DeleteAsync(healthy.VolumeId);
            await Quietly(() => fx.DeleteAsync(damaged.VolumeId));
        }
    }

    [Fact]
    public async Task ARecordPutBackRepairsTheVolumeAndCleanupThenTouchesOnlyTheOldCopy()
    {
        var request = ClusterFixture.NewVolume(16L << 20);
        var volume = await fx.CreateAsync(request);
        var record = fx.RecordOf(volume.VolumeId);
        var image = Path.ChangeExtension(record, ".img");
        var good = await File.ReadAllTextAsync(record);
        var state = Path.Combine(fx.A.Directory, "state");
        try
        {
            await File.WriteAllTextAsync(record, "{\"volumeId\": ");
            await RestartNodeAAsync();
            Assert.True((await fx.Controller.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId })).Status.VolumeCondition.Abnormal);

            // The operator puts the record back: no restart needed, the volume is itself again, listed once.
            await File.WriteAllTextAsync(record, good);
            Assert.False((await fx.Controller.ControllerGetVolumeAsync(new ControllerGetVolumeRequest { VolumeId = volume.VolumeId })).Status.VolumeCondition.Abnormal);
            Assert.Single((await fx.Controller.ListVolumesAsync(new ListVolumesRequest())).Entries, e => e.Volume.VolumeId == volume.VolumeId);
            Assert.Equal(volume.VolumeId, (await fx.CreateAsync(request)).VolumeId);

            // Cleanup offers to remove the old copy only, never the repaired volume's image.
            await OperatorCliTests.SolarAsync("cleanup", "--state-dir", state, "--apply");
            Assert.True(File.Exists(image));
            Assert.False(File.Exists(record + ".unreadable"));
        }
        finally
        {
            if (!File.Exists(record)) await File.WriteAllTextAsync(record, good);
            await fx.DeleteAsync(volume.VolumeId);
        }
        Assert.False(File.Exists(image));
    }

    [Fact]
    public async Task AnImageWithoutARecordIsKeptAcrossARestartAndAdoptedByTheSameName()
    {
        var request = ClusterFixture.NewVolume(16L << 20);
        var volume = await fx.CreateAsync(request);
        var record = fx.RecordOf(volume.VolumeId);
        var image = Path.ChangeExtension(record, ".img");
        var payload = RandomNumberGenerator.GetBytes(1 << 20);
        try
        {
            await File.WriteAllBytesAsync(image, payload);
            await using (var stream = new FileStream(image, FileMode.Open)) stream.SetLength(16L << 20);
            File.Delete(record); // as a crash between the image and its record leaves it
            await RestartNodeAAsync();
            Assert.True(File.Exists(image), "start-up deleted an image that had no record");

            var adopted = await fx.CreateAsync(request);
            Assert.Equal(volume.VolumeId, adopted.VolumeId);
            using var read = File.OpenRead(image);
            var head = new byte[payload.Length];
            read.ReadExactly(head);
            Assert.Equal(payload, head);
        }
        finally
        {
            await fx.DeleteAsync(volume.VolumeId);
        }
    }

    /// <summary>node-a restarted on its state, and heard from again by the controller.</summary>
    private async Task RestartNodeAAsync()
    {
        await fx.Cluster.RestartNodeAsync(ClusterFixture.NodeA);
        await fx.Cluster.WaitForAgentAsync(ClusterFixture.NodeA);
    }

    private static async Task Quietly(Func<Task> call)
    {
        try { await call(); }
        catch (RpcException) { }
    }
}
