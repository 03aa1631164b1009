using SolarCsi.Node.Staging;

namespace SolarCsi.Tests.Node;

public sealed class NodeJournalTests
{
    [Fact]
    public async Task EntriesSurviveANewInstanceAndRemoveIsIdempotent()
    {
        using var dir = new TempDir();
        var entry = new JournalEntry("file~default~n1~v000000000000000000000001", StagePhase.Staged, "/var/lib/kubelet/s", "loop", "/x.img",
            "/dev/loop4", false, "ext4", true, false, ["noatime"], [new PublishTarget("/var/lib/kubelet/t", true)]);
        await new NodeJournal(dir.Path).SaveAsync(entry, CancellationToken.None);

        var reopened = new NodeJournal(dir.Path);
        var read = reopened.Get(entry.VolumeId)!;
        Assert.Equal(entry.Device, read.Device);
        Assert.Equal(StagePhase.Staged, read.Phase);
        Assert.Equal(entry.Targets, read.Targets);
        Assert.Equal(entry.MountFlags, read.MountFlags);
        Assert.Single(reopened.All());
        Assert.Contains("\"staged\"", File.ReadAllText(Directory.GetFiles(dir.Path)[0]), StringComparison.OrdinalIgnoreCase);

        reopened.Remove(entry.VolumeId);
        reopened.Remove(entry.VolumeId);
        Assert.Null(reopened.Get(entry.VolumeId));
    }
}
