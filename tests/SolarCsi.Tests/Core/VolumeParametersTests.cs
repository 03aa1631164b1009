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

    [Fact]
    public void LocalMediaParameters()
    {
        var lvm = VolumeParameters.Parse(new Dictionary<string, string> { ["media"] = "lvm", ["lvmType"] = "thin", ["mkfsOptions"] = "-m 0  -L data" });
        Assert.Equal(("lvm", "thin"), (lvm.Media, lvm.MediumParameters["lvmType"]));
        Assert.Equal(["-m", "0", "-L", "data"], lvm.MkfsOptions);
        Assert.Equal("-m 0 -L data", lvm.Canonical()["mkfsOptions"]);
        Assert.Equal("thin", lvm.Canonical()["lvmType"]);
        Assert.Empty(VolumeParameters.Parse(new Dictionary<string, string> { ["media"] = "nbd" }).MediumParameters);
    }

    /// <summary>What shared code asks a medium, for every medium there is: one catalog, no name compared elsewhere.</summary>
    [Fact]
    public void EachMediumSaysWhatItIs()
    {
        Assert.Equal(["disk", "file", "lvm", "nbd", "pmem", "tmpfs"], SolarCsi.Core.Media.MediaCatalog.All.Select(m => m.Name).Order());
        Assert.Equal(["nbd"], SolarCsi.Core.Media.MediaCatalog.All.Where(m => !m.IsLocal).Select(m => m.Name));
        Assert.Equal(["nbd"], SolarCsi.Core.Media.MediaCatalog.All.Where(m => m.TakesRateLimits).Select(m => m.Name));
        Assert.Equal(["lvm"], SolarCsi.Core.Media.MediaCatalog.All.Where(m => m.SnapshotFreezesItself).Select(m => m.Name));
        Assert.Equal(["pmem"], SolarCsi.Core.Media.MediaCatalog.All.Where(m => m.MountsWithDax).Select(m => m.Name));
        Assert.Equal(["tmpfs"], SolarCsi.Core.Media.MediaCatalog.All.Where(m => !m.IsFormatted).Select(m => m.Name));
        Assert.Equal(["file:ImageFile", "nbd:Remote", "tmpfs:MountedFilesystem", "lvm:LocalDevice", "disk:LocalDevice", "pmem:LocalDevice"],
            SolarCsi.Core.Media.MediaCatalog.All.Select(m => $"{m.Name}:{m.AttachedAs}"));
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => SolarCsi.Core.Media.MediaCatalog.Of("nvme")).StatusCode);
    }

    [Theory]
    [InlineData("file", "lvmType", "thin", "lvmType")]
    [InlineData("lvm", "lvmType", "thinn", "lvmType")]
    [InlineData("tmpfs", "mkfsOptions", "-m 0", "mkfsOptions")]
    [InlineData("file", "mkfsOptions", "-O ^has_journal /dev/sda", "/dev/sda")]
    [InlineData("file", "mkfsOptions", "-E $(reboot)", "mkfsOptions")]
    [InlineData("file", "mkfsOptions", "-L a;b", "mkfsOptions")]
    [InlineData("file", "mkfsOptions", "data -m 0", "must start with an option")]
    public void RefusesContradictoryOrDangerousLocalMediaParameters(string media, string key, string value, string named)
    {
        var e = Assert.Throws<RpcException>(() => VolumeParameters.Parse(new Dictionary<string, string> { ["media"] = media, [key] = value }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains(named, e.Status.Detail);
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
