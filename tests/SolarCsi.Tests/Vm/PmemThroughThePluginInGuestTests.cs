using System.Globalization;
using Csi.V1;
using Xunit.Abstractions;
using static SolarCsi.Tests.Vm.GuestFacts;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// pmem volumes through the NativeAOT plugin in the guest, driven over CSI, on a qemu NVDIMM with a label area (what a
/// node with real persistent memory has): a named fsdax namespace per volume, ext4 staged with dax, raw block, the
/// capacity the region reports, and the namespaces gone after delete.
/// </summary>
[Collection(VmCollection.Name)]
public sealed class PmemThroughThePluginInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    private static readonly Dictionary<string, string> Pmem = new() { ["media"] = "pmem" };

    [SkippableFact]
    public async Task FsdaxVolumesMountWithDaxServeRawBlockAndReportTheRegionsCapacity()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        await PrepareRegionAsync(g);
        await using var plugin = await GuestPlugin.StartAsync(g, "--pools-config /run/pools.json");
        try
        {
            var empty = await RegionAvailableAsync(g);
            Assert.Equal(empty, await CapacityAsync(plugin));

            // A small volume formatted as the driver does (mke2fs would pick 1 KiB blocks under 512 MiB; dax needs 4 KiB).
            var fs = await GuestVolume.CreateAndAttachAsync(g, plugin, "pmem-fs", "pmem", 64 * MiB);
            var device = await g.RunOkAsync($"findmnt -n -o SOURCE {fs.Staging}");
            Assert.StartsWith("/dev/pmem", device);
            // dax=always: what "-o dax" shows as since Linux 5.8.
            Assert.Contains("dax=always", (await g.RunOkAsync($"findmnt -n -o OPTIONS {fs.Staging}")).Split(','));
            Assert.InRange(await g.DeviceBytesAsync(device), 64 * MiB, fs.Volume.CapacityBytes);
            var sha = await g.WriteRandomAsync(fs.Target + "/data.bin", 8);
            await fs.DetachAsync();
            await fs.AttachAsync();
            Assert.Equal(sha, await g.ReadBackAsync(fs.Target + "/data.bin"));

            var block = await GuestVolume.CreateAndAttachAsync(g, plugin, "pmem-block", "pmem", 32 * MiB, GuestVolume.Block());
            Assert.Equal("block", await g.RunOkAsync($"stat -L -c %F {block.Target} | cut -d' ' -f1"));
            var blockSha = await g.RunOkAsync($"head -c 4M /dev/urandom > /run/payload && dd if=/run/payload of={block.Target} bs=1M conv=notrunc,fsync status=none && " +
                                              "sha256sum < /run/payload | cut -d' ' -f1; rm -f /run/payload");
            Assert.Equal(blockSha, await g.RunOkAsync($"dd if={block.Target} bs=1M count=4 iflag=direct status=none | sha256sum | cut -d' ' -f1"));

            var used = await RegionAvailableAsync(g);
            output.WriteLine($"region available: {empty} empty, {used} with both volumes");
            Assert.True(used <= empty - 96 * MiB, $"two namespaces of 96 MiB left {used} of {empty} bytes available");
            Assert.Equal(used, await CapacityAsync(plugin));

            await fs.DeleteAsync();
            await block.DeleteAsync();
            Assert.Equal("", await g.RunOkAsync("ndctl list -N | grep -o '\"size\":[1-9][0-9]*'; true"));
            Assert.Equal(empty, await RegionAvailableAsync(g));
            Assert.Equal(empty, await CapacityAsync(plugin));
        }
        finally
        {
            output.WriteLine(await plugin.LogTailAsync());
            await g.ShellAsync("rm -f /run/pools.json");
        }
    }

    private static async Task<long> RegionAvailableAsync(VmTestHost g) =>
        long.Parse(await g.RunOkAsync("ndctl list -r region0 | grep -o '\"available_size\":[0-9]*' | cut -d: -f2"), CultureInfo.InvariantCulture);

    private static async Task<long> CapacityAsync(GuestPlugin plugin) =>
        (await plugin.Controller.GetCapacityAsync(new GetCapacityRequest { Parameters = { Pmem } }, deadline: GuestVolume.Deadline())).AvailableCapacity;

    /// <summary>
    /// Node set-up, not the driver's: a new NVDIMM's label area is blank, and the kernel then shows the whole region
    /// as one label-less raw namespace (no free capacity). Initialising the labels frees it for named namespaces.
    /// </summary>
    private static async Task PrepareRegionAsync(VmTestHost g)
    {
        await g.RunOkAsync("modprobe -a nfit nd_pmem dax_pmem");
        if (await RegionAvailableAsync(g) == 0)
            await g.RunOkAsync("ndctl disable-region all && ndctl init-labels -f all && ndctl enable-region all");
        await g.RunOkAsync("echo '{\"pmem\": [{\"name\": \"default\", \"region\": \"region0\"}]}' > /run/pools.json");
    }
}
