using Grpc.Core;
using SolarCsi.Core.Validation;

namespace SolarCsi.Tests.Core;

public sealed class VolumeParametersTests
{
    [Fact]
    public void DefaultsToTheDefaultFilePool()
    {
        var p = VolumeParameters.Parse(new Dictionary<string, string>());
        Assert.Equal(("file", "default"), (p.Media, p.Pool));
    }

    [Fact]
    public void AcceptsKnownKeysAndProvisionerMetadata()
    {
        var p = VolumeParameters.Parse(new Dictionary<string, string>
        {
            ["media"] = "file", ["pool"] = "fast-1", ["csi.storage.k8s.io/pvc/name"] = "data-0",
        });
        Assert.Equal("fast-1", p.Pool);
    }

    [Theory]
    [InlineData("mediaa", "file", "mediaa")]
    [InlineData("media", "floppy", "media")]
    [InlineData("pool", "../x", "pool")]
    [InlineData("pool", "", "pool")]
    public void RefusesUnknownOrBadParametersByName(string key, string value, string named)
    {
        var e = Assert.Throws<RpcException>(() => VolumeParameters.Parse(new Dictionary<string, string> { [key] = value }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains($"'{named}'", e.Status.Detail);
    }
}
