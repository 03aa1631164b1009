using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Node.Devices;
using Xunit.Abstractions;
using static SolarCsi.Tests.Vm.GuestFacts;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// Online ext4 grow as NodeExpandVolume does it (<see cref="Filesystems.GrowAsync"/>). The host cannot run it: resize2fs
/// on a mounted filesystem needs CAP_SYS_RESOURCE; the guest is root with every capability.
/// </summary>
[Collection(VmCollection.Name)]
public sealed class Ext4GrowInGuestTests(VmFixture vm, ITestOutputHelper output)
{
    [SkippableFact]
    public async Task GrowsAMountedExt4ToFillItsGrownDevice()
    {
        Skip.If(vm.SkipReason is not null, vm.SkipReason);
        var g = vm.Host;
        var runner = new GuestProcessRunner(g);
        var filesystems = new Filesystems(runner);
        const string image = "/tmp/ext4grow.img", mount = "/mnt/ext4grow";
        await g.RunOkAsync($"modprobe loop && truncate -s 64M {image} && mkdir -p {mount}");
        var loop = await g.RunOkAsync($"losetup --find --show {image}");
        try
        {
            await filesystems.FormatAsync(loop, "ext4", [], CancellationToken.None);
            await g.RunOkAsync($"mount {loop} {mount}");
            var before = await g.FilesystemBytesAsync(mount);
            var sha = await g.WriteRandomAsync($"{mount}/data.bin", 8);

            // The volume grows underneath (as the pool's ControllerExpand would); the loop device learns the new size.
            await g.RunOkAsync($"truncate -s 256M {image} && losetup --set-capacity {loop}");
            Assert.Equal(256 * MiB, await g.DeviceBytesAsync(loop));
            await filesystems.GrowAsync(loop, mount, "ext4", CancellationToken.None);

            var after = await g.FilesystemBytesAsync(mount);
            output.WriteLine($"statfs size {before} -> {after} bytes; commands: {string.Join(" | ", runner.Commands)}");
            Assert.InRange(before, 48 * MiB, 64 * MiB);
            // statfs leaves out ext4's metadata (about 9% at this size); the exact check is the superblock below.
            Assert.InRange(after, 224 * MiB, 256 * MiB);
            // The superblock spans exactly the grown device, and the data survived the resize.
            Assert.Equal(256 * MiB, await filesystems.Ext4SizeAsync(loop, CancellationToken.None));
            Assert.Equal(sha, await g.ReadBackAsync($"{mount}/data.bin"));
        }
        finally
        {
            await g.ShellAsync($"umount {mount}; losetup -d {loop}; rm -f {image}");
        }
    }
}
