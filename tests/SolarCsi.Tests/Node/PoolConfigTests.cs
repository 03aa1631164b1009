using SolarCsi.Node.Pools;

namespace SolarCsi.Tests.Node;

public sealed class PoolConfigTests
{
    [Fact]
    public void ReadsEveryMedia()
    {
        var config = PoolConfig.Parse("""
            {
              // comments are allowed: this file is written by people
              "tmpfs": [ { "name": "default", "capacity": "2Gi" } ],
              "lvm":   [ { "name": "fast", "volumeGroup": "vg-solar", "thinPool": "thin0" }, { "name": "thick", "volumeGroup": "vg-solar" } ],
              "disk":  [ { "name": "default", "paths": [ "/dev/disk/by-id/nvme-*", "/dev/sdb" ], "minSize": "10Gi" } ],
              "pmem":  [ { "name": "default", "region": "region0" } ],
            }
            """);
        Assert.Equal(new PoolConfig.Tmpfs("default", 2L << 30), Assert.Single(config.TmpfsPools));
        Assert.Equal(["fast", "thick"], config.LvmPools.Select(p => p.Name));
        Assert.Equal("thin0", config.LvmPools[0].ThinPool);
        Assert.Null(config.LvmPools[1].ThinPool);
        Assert.Equal(10L << 30, config.DiskPools[0].MinSizeBytes);
        Assert.Equal(["/dev/disk/by-id/nvme-*", "/dev/sdb"], config.DiskPools[0].Paths);
        Assert.Equal("region0", config.PmemPools[0].Region);
    }

    [Theory]
    [InlineData("""{ "tmpfs": [ { "name": "default", "capacty": "1Gi" } ] }""", "capacty")]
    [InlineData("""{ "tmpfss": [] }""", "tmpfss")]
    [InlineData("""{ "tmpfs": [ { "name": "default" } ] }""", "'capacity' is required")]
    [InlineData("""{ "tmpfs": [ { "name": "Default", "capacity": "1Gi" } ] }""", "not a valid pool name")]
    [InlineData("""{ "tmpfs": [ { "name": "a", "capacity": "1Gi" }, { "name": "a", "capacity": "2Gi" } ] }""", "two tmpfs pools")]
    [InlineData("""{ "lvm": [ { "name": "a", "volumeGroup": "../etc" } ] }""", "not a valid LVM name")]
    [InlineData("""{ "lvm": [ { "name": "a", "volumeGroup": "vg", "thinPool": "-x" } ] }""", "thinPool")]
    [InlineData("""{ "disk": [ { "name": "a", "paths": [ "/etc/passwd" ] } ] }""", "under /dev/")]
    [InlineData("""{ "disk": [ { "name": "a", "paths": [ "/dev/*/sda" ] } ] }""", "last part")]
    [InlineData("""{ "disk": [ { "name": "a", "paths": [] } ] }""", "at least one pattern")]
    [InlineData("""{ "pmem": [ { "name": "a", "region": "region0; rm" } ] }""", "region")]
    public void RefusesWhatWouldBeSilentlyWrong(string json, string message)
    {
        var e = Assert.Throws<FormatException>(() => PoolConfig.Parse(json));
        Assert.Contains(message, e.Message);
    }
}
