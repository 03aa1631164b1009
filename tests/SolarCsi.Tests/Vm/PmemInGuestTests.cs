using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Devices;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Pools.Pmem;
using SolarCsi.Node.Staging;
using Xunit.Abstractions;
using static SolarCsi.Tests.Vm.GuestFacts;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The production <see cref="PmemPool"/> with its ndctl commands run in the guest, on a qemu NVDIMM with a label
/// area (what a node with real persistent memory has): a named fsdax namespace, ext4 mounted with dax, bytes back.
/// </summary>
[Collection(VmCollection.Name)]
public sealed class PmemInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    private static readonly CancellationToken Ct = CancellationToken.None;

    [SkippableFact]
    public async Task FsdaxNamespaceCarriesBytesThroughADaxMount()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        var (pool, runner, state) = await NewPoolAsync();
        using var _ = state;
        var id = StorageId.ForVolume("pmem", "vm", "n1", "pm").ToString();
        try
        {
            var record = await pool.CreateVolumeAsync(id, "pm", 64 * MiB, 0, new(), null, Ct);
            var device = await pool.PrepareBackingAsync(id, Ct);
            Assert.StartsWith("/dev/pmem", device);
            Assert.InRange(await g.DeviceBytesAsync(device), 64 * MiB, record.CapacityBytes);
            // 4 KiB blocks: dax needs the block size to be the page size (see the test below for the driver's own mkfs).
            await new Filesystems(runner).FormatAsync(device, "ext4", ["-b", "4096"], Ct);
            await MountWithDriverOptionsAsync(g, device);
            Assert.Contains("dax", await g.RunOkAsync("findmnt -no OPTIONS /mnt/pmem"));
            var sha = await g.WriteRandomAsync("/mnt/pmem/data.bin", 8);
            Assert.Equal(sha, await g.ReadBackAsync("/mnt/pmem/data.bin"));
            await g.RunOkAsync("umount /mnt/pmem");
        }
        finally
        {
            await g.ShellAsync("umount /mnt/pmem");
            output.WriteLine(string.Join("\n", runner.Commands));
            await pool.DeleteVolumeAsync(id, Ct);
        }
        Assert.Null(pool.GetVolume(id));
        var (program, args) = NdctlCommands.ListNamespaces("region0");
        Assert.DoesNotContain(NdctlParser.ParseNamespaces((await runner.RunAsync(program, args, Ct)).StandardOutput), n => n.SizeBytes > 0);
    }

    /// <summary>
    /// NodeStage for a pmem volume: Filesystems.FormatAsync with the StorageClass's (here: no) mkfs options made fit
    /// for dax, then a mount with the options NodeVolumes.MountOptions adds for pmem (dax). This guest found the
    /// defect it guards: mke2fs's "small" profile (/etc/mke2fs.conf, filesystems under 512 MiB) picks 1 KiB blocks,
    /// and the kernel refuses dax unless the block size is the page size ("EXT4-fs: unsupported blocksize for DAX").
    /// </summary>
    [SkippableFact]
    public async Task ASmallPmemVolumeFormattedAsTheDriverDoesMountsWithDax()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        var (pool, runner, state) = await NewPoolAsync();
        using var _ = state;
        var id = StorageId.ForVolume("pmem", "vm", "n1", "small").ToString();
        try
        {
            await pool.CreateVolumeAsync(id, "small", 64 * MiB, 0, new(), null, Ct);
            var device = await pool.PrepareBackingAsync(id, Ct);
            // What NodeVolumes formats a pmem volume with: the StorageClass's options (none here), made fit for dax.
            await new Filesystems(runner).FormatAsync(device, "ext4", Filesystems.ForDax("ext4", []), Ct);
            output.WriteLine("ext4 block size: " + await g.RunOkAsync($"dumpe2fs -h {device} 2>/dev/null | sed -n 's/^Block size: *//p'"));
            await MountWithDriverOptionsAsync(g, device);
            Assert.Contains("dax", await g.RunOkAsync("findmnt -no OPTIONS /mnt/pmem"));
        }
        finally
        {
            await g.ShellAsync("umount /mnt/pmem");
            output.WriteLine(string.Join("\n", runner.Commands));
            await pool.DeleteVolumeAsync(id, Ct);
        }
    }

    /// <summary>The production pool on the guest's NVDIMM region, its records in a host folder the caller disposes.</summary>
    private async Task<(PmemPool Pool, GuestProcessRunner Runner, TempDir State)> NewPoolAsync()
    {
        var runner = new GuestProcessRunner(vm.Host);
        await PrepareRegionAsync(vm.Host);
        var state = new TempDir();
        var pool = new PmemPool("vm", "region0", state.Path, runner, NullLogger.Instance);
        await pool.InitializeAsync(Ct);
        return (pool, runner, state);
    }

    private static async Task MountWithDriverOptionsAsync(VmTestHost g, string device)
    {
        var options = NodeVolumes.MountOptions("ext4", [], readOnly: false, dax: true);
        var mount = await g.ShellAsync($"mkdir -p /mnt/pmem && mount -t ext4 -o {Shell.Quote(string.Join(',', options))} {device} /mnt/pmem");
        if (mount.ExitCode != 0)
            Assert.Fail($"mount -o {string.Join(',', options)} failed: {mount.StandardError.Trim()}; dmesg: {await g.RunOkAsync("dmesg | tail -3")}");
    }

    /// <summary>
    /// Node set-up, not the driver's: a new NVDIMM's label area is blank, and the kernel then shows the whole region
    /// as one label-less raw namespace (no free capacity). Initialising the labels frees it for named namespaces.
    /// </summary>
    private static async Task PrepareRegionAsync(VmTestHost g)
    {
        await g.RunOkAsync("modprobe -a nfit nd_pmem dax_pmem");
        var (program, args) = NdctlCommands.ListRegions();
        var region = Assert.Single(NdctlParser.ParseRegions(await g.RunOkAsync(Shell.Join([program, .. args]))));
        if (region.AvailableBytes == 0)
            await g.RunOkAsync("ndctl disable-region all && ndctl init-labels -f all && ndctl enable-region all");
    }
}
