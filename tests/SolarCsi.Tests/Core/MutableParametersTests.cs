using Grpc.Core;
using SolarCsi.Core.Validation;

namespace SolarCsi.Tests.Core;

public sealed class MutableParametersTests
{
    [Fact]
    public void BandwidthIsNormalisedToBytesPerSecond()
    {
        Assert.Equal("104857600", MutableParameters.Parse("nbd", new Dictionary<string, string> { ["bandwidthLimit"] = "100Mi" })["bandwidthLimit"]);
        Assert.Equal("unlimited", MutableParameters.Parse("nbd", new Dictionary<string, string> { ["bandwidthLimit"] = "unlimited" })["bandwidthLimit"]);
        Assert.Equal(100L << 20, MutableParameters.BandwidthLimit(new Dictionary<string, string> { ["bandwidthLimit"] = "104857600" }));
        Assert.Null(MutableParameters.BandwidthLimit(new Dictionary<string, string> { ["bandwidthLimit"] = "unlimited" }));
        Assert.Null(MutableParameters.BandwidthLimit(new Dictionary<string, string>()));
    }

    [Theory]
    [InlineData("nbd", "iopsLimit", "100", "iopsLimit")]
    [InlineData("nbd", "bandwidthLimit", "fast", "fast")]
    [InlineData("nbd", "bandwidthLimit", "1Ki", "outside")]
    [InlineData("nbd", "bandwidthLimit", "1Ti", "outside")]
    [InlineData("file", "bandwidthLimit", "100Mi", "applies to media 'nbd' only")]
    public void RefusesWhatItCannotEnforce(string media, string key, string value, string message)
    {
        var e = Assert.Throws<RpcException>(() => MutableParameters.Parse(media, new Dictionary<string, string> { [key] = value }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains(message, e.Status.Detail);
    }
}
