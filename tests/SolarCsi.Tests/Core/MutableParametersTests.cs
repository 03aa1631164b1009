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
        Assert.Equal(new RateLimits(100L << 20, null), MutableParameters.Limits(new Dictionary<string, string> { ["bandwidthLimit"] = "104857600" }));
        Assert.Equal(RateLimits.None, MutableParameters.Limits(new Dictionary<string, string> { ["bandwidthLimit"] = "unlimited", ["iopsLimit"] = "unlimited" }));
        Assert.Equal(RateLimits.None, MutableParameters.Limits(new Dictionary<string, string>()));
    }

    [Fact]
    public void RequestRateIsAWholeNumberPerSecond()
    {
        var parsed = MutableParameters.Parse("nbd", new Dictionary<string, string> { ["iopsLimit"] = "500", ["bandwidthLimit"] = "10Mi" });
        Assert.Equal("500", parsed["iopsLimit"]);
        Assert.Equal(new RateLimits(10L << 20, 500), MutableParameters.Limits(parsed));
    }

    [Theory]
    [InlineData("nbd", "iops", "100", "unknown mutable parameter 'iops'")]
    [InlineData("nbd", "iopsLimit", "1k", "not a whole number")]
    [InlineData("nbd", "iopsLimit", "-5", "not a whole number")]
    [InlineData("nbd", "iopsLimit", "0", "outside")]
    [InlineData("nbd", "iopsLimit", "99999999999", "outside")]
    [InlineData("tmpfs", "iopsLimit", "100", "applies to media 'nbd' only")]
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
