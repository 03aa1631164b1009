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
    public void SymlinksThatLeadOutOfTheRootsAreRefused()
    {
        using var dir = new TempDir();
        var root = Path.Combine(dir.Path, "kubelet");
        Directory.CreateDirectory(Path.Combine(root, "pods"));
        Directory.CreateSymbolicLink(Path.Combine(root, "pods", "escape"), "/etc");
        File.CreateSymbolicLink(Path.Combine(root, "pods", "dangling"), "/nonexistent-solar-dir/x");
        Directory.CreateSymbolicLink(Path.Combine(root, "pods", "inside"), Path.Combine(root, "pods"));
        var rules = new PathRules([root]);
        foreach (var bad in new[] { "escape", "escape/new/mount", "dangling", "dangling/mount" })
            Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => rules.Require(Path.Combine(root, "pods", bad), "target_path")).StatusCode);
        Assert.Equal(Path.Combine(root, "pods", "inside", "v"), rules.Require(Path.Combine(root, "pods", "inside", "v"), "target_path"));
        Assert.Equal(Path.Combine(root, "pods", "new", "deep", "v"), rules.Require(Path.Combine(root, "pods", "new", "deep", "v"), "target_path"));
    }

    [Fact]
    public void MissingPathIsInvalidArgumentNamingTheField()
    {
        var e = Assert.Throws<RpcException>(() => _rules.Require("", "staging_target_path"));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("staging_target_path", e.Status.Detail);
    }
}
