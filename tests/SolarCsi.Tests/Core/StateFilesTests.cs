using System.Text.Json;
using SolarCsi.Core.Storage;

namespace SolarCsi.Tests.Core;

public sealed class StateFilesTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private sealed record Thing(string Name);

    private static Thing? Parse(byte[] bytes) => JsonSerializer.Deserialize<Thing>(bytes);

    [Fact]
    public void AnUnreadableFileIsMovedAsideKeptAndReadsAsAbsent()
    {
        var path = Path.Combine(_dir.Path, "a.json");
        File.WriteAllText(path, """{"Name": "tru""");
        Assert.Null(StateFiles.Read(path, Parse));
        Assert.False(File.Exists(path));
        Assert.Equal("""{"Name": "tru""", File.ReadAllText(path + StateFiles.UnreadableSuffix));
        Assert.True(StateFiles.IsUnreadable(path));
        Assert.Equal([path + StateFiles.UnreadableSuffix], StateFiles.FindUnreadable(_dir.Path));
        Assert.Equal(path, StateFiles.OriginalOf(StateFiles.FindUnreadable(_dir.Path)[0]));

        // A second bad version does not overwrite the first piece of evidence.
        File.WriteAllText(path, "");
        Assert.Null(StateFiles.Read(path, Parse));
        Assert.Equal(2, StateFiles.FindUnreadable(_dir.Path).Count);
        Assert.Equal("""{"Name": "tru""", File.ReadAllText(path + StateFiles.UnreadableSuffix));
    }

    [Fact]
    public void AValidFileIsReadAMissingOneIsAbsentAndAWrongShapeIsUnreadable()
    {
        var reported = new List<string>();
        var previous = StateFiles.OnUnreadable;
        StateFiles.OnUnreadable = (path, _, why) => reported.Add($"{Path.GetFileName(path)}: {why}");
        try
        {
            var good = Path.Combine(_dir.Path, "good.json");
            File.WriteAllText(good, """{"Name": "x"}""");
            Assert.Equal(new Thing("x"), StateFiles.Read(good, Parse, t => t.Name is { Length: > 0 }));
            Assert.Null(StateFiles.Read(Path.Combine(_dir.Path, "missing.json"), Parse));
            Assert.Null(StateFiles.Read(Path.Combine(_dir.Path, "no-such-dir", "x.json"), Parse));

            var empty = Path.Combine(_dir.Path, "shape.json");
            File.WriteAllText(empty, "{}");
            Assert.Null(StateFiles.Read(empty, Parse, t => t.Name is { Length: > 0 }));
            Assert.True(File.Exists(good));
            Assert.Equal(["shape.json: it does not hold what it should"], reported);
        }
        finally
        {
            StateFiles.OnUnreadable = previous;
        }
    }
}
