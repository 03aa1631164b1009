using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Controller.Placement;
using SolarCsi.Core.Ids;

namespace SolarCsi.Tests.Controller;

public sealed class NameClaimsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private NameClaims Open() => new(_dir.Path, NullLogger<NameClaims>.Instance);

    [Fact]
    public async Task AClaimOutlivesTheControllerAndGoesOnlyWithItsOwnVolume()
    {
        var onA = StorageId.ForVolume("file", "default", "node-a", "pvc-1");
        var onB = StorageId.ForVolume("file", "default", "node-b", "pvc-1");
        await Open().SetAsync("pvc-1", onA, CancellationToken.None);

        var restarted = Open();
        Assert.Equal(onA.ToString(), restarted.Get("pvc-1")?.VolumeId);
        // Deleting another volume of the same name (an orphan) leaves the name with the volume it was given to.
        restarted.Release(onB);
        Assert.Equal(onA.ToString(), Open().Get("pvc-1")?.VolumeId);
        restarted.Release(onA);
        Assert.Null(restarted.Get("pvc-1"));
        Assert.Null(Open().Get("pvc-1"));
    }

    [Fact]
    public async Task AClaimThatCannotBeReadIsSetAsideNotTrusted()
    {
        await Open().SetAsync("pvc-2", StorageId.ForVolume("nbd", "default", "node-a", "pvc-2"), CancellationToken.None);
        var file = Assert.Single(Directory.GetFiles(Path.Combine(_dir.Path, "claims")));
        File.WriteAllText(file, """{ "name": "pvc-2", "volumeId": "nbd~default~node-b~v0000000000000000000000""");
        var restarted = Open();
        Assert.Null(restarted.Get("pvc-2"));
        Assert.Equal(0, restarted.Count);
        Assert.True(File.Exists(file + ".unreadable"));
        // A claim whose id is not the one its name hashes to (edited by hand, or another name's) is not trusted either.
        File.WriteAllText(file, $$"""{ "name": "pvc-2", "volumeId": "{{StorageId.ForVolume("nbd", "default", "node-b", "other")}}", "claimed": "2026-12-02T00:00:00Z" }""");
        Assert.Null(Open().Get("pvc-2"));
    }
}
