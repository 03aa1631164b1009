using Grpc.Core;
using SolarCsi.Core.Ids;

namespace SolarCsi.Tests.Core;

public sealed class StorageIdTests
{
    [Fact]
    public void VolumeIdRoundTripsAndIsDeterministicPerName()
    {
        var a = StorageId.ForVolume("file", "default", "node-a.example.com", "pvc-1");
        var b = StorageId.ForVolume("file", "default", "node-a.example.com", "pvc-1");
        var c = StorageId.ForVolume("file", "default", "node-a.example.com", "pvc-2");
        Assert.Equal(a, b);
        Assert.NotEqual(a.Name, c.Name);
        Assert.True(StorageId.TryParse(a.ToString(), out var parsed));
        Assert.Equal(a, parsed);
        Assert.False(parsed.IsSnapshot);
        Assert.True(StorageId.ForSnapshot("file", "default", "n1", "snap").IsSnapshot);
    }

    [Theory]
    [InlineData("")]
    [InlineData("file~default~node-a")]
    [InlineData("file~default~../etc~v000000000000000000000000")]
    [InlineData("file~default~node..a~v000000000000000000000000")]
    [InlineData("file~default~node-a~v00000000000000000000000/")]
    [InlineData("file~de/fault~node-a~v000000000000000000000000")]
    [InlineData("file~default~node-a~../../etc/passwd")]
    [InlineData("FILE~default~node-a~v000000000000000000000000")]
    [InlineData("file~default~node a~v000000000000000000000000")]
    [InlineData("file~default~node-a~x000000000000000000000000")]
    [InlineData("file~default~node-a~v000000000000000000000000~extra")]
    public void RejectsMalformedOrHostileIds(string text) => Assert.False(StorageId.TryParse(text, out _));

    [Fact]
    public void RejectsOverlongIds() =>
        Assert.False(StorageId.TryParse($"file~default~{new string('a', 200)}~v000000000000000000000000", out _));

    [Fact]
    public void ParseVolumeMapsMissingToInvalidArgumentAndForeignToNotFound()
    {
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => StorageId.ParseVolume("")).StatusCode);
        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => StorageId.ParseVolume("not-ours")).StatusCode);
        var snapshot = StorageId.ForSnapshot("file", "default", "n1", "s").ToString();
        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => StorageId.ParseVolume(snapshot)).StatusCode);
    }

    [Fact]
    public void PrintableStripsControlCharactersAndBoundsLength()
    {
        var printable = StorageId.Printable("a\nb\u0001" + new string('x', 500));
        Assert.DoesNotContain('\n', printable);
        Assert.True(printable.Length <= StorageId.MaxLength + 1);
    }
}
