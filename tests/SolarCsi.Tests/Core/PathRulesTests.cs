using Grpc.Core;
using SolarCsi.Core.Validation;

namespace SolarCsi.Tests.Core;

public sealed class PathRulesTests
{
    private readonly PathRules _rules = new(["/var/lib/kubelet"]);

    [Theory]
    [InlineData("/var/lib/kubelet/pods/x/volumes/v", "/var/lib/kubelet/pods/x/volumes/v")]
    [InlineData("/var/lib/kubelet/plugins/staging/", "/var/lib/kubelet/plugins/staging")]
    public void AcceptsNormalisedPathsUnderTheRoots(string path, string expected) => Assert.Equal(expected, _rules.Require(path, "target_path"));

    [Theory]
    [InlineData("relative/path")]
    [InlineData("/etc/passwd")]
    [InlineData("/var/lib/kubelet")]
    [InlineData("/var/lib/kubeletx/pods")]
    [InlineData("/var/lib/kubelet/../../../etc")]
    [InlineData("/var/lib/kubelet/pods/./x")]
    [InlineData("/var/lib/kubelet//pods")]
    [InlineData("/var/lib/kubelet/pods/\nx")]
    public void RejectsPathsOutsideOrAmbiguous(string path) =>
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => _rules.Require(path, "target_path")).StatusCode);

    [Fact]
    public void MissingPathIsInvalidArgumentNamingTheField()
    {
        var e = Assert.Throws<RpcException>(() => _rules.Require("", "staging_target_path"));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("staging_target_path", e.Status.Detail);
    }
}
