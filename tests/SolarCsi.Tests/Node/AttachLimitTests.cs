using SolarCsi.Node.Attach;

namespace SolarCsi.Tests.Node;

public sealed class AttachLimitTests
{
    [Fact]
    public void TheKernelsNbdDeviceCountLowersTheConfiguredLimit()
    {
        using var dir = new TempDir();
        Assert.Equal(128, AttachLimit.Effective(128, Path.Combine(dir.Path, "no-module")));
        Directory.CreateDirectory(Path.Combine(dir.Path, "parameters"));
        File.WriteAllText(Path.Combine(dir.Path, "parameters", "nbds_max"), "16\n");
        Assert.Equal(16, AttachLimit.Effective(128, dir.Path));
        Assert.Equal(8, AttachLimit.Effective(8, dir.Path));
    }
}
