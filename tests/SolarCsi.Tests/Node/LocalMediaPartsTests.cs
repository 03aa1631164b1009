using SolarCsi.Node.Devices;
using SolarCsi.Node.Pools.Disk;
using SolarCsi.Node.Staging;

namespace SolarCsi.Tests.Node;

/// <summary>The pieces of the local media path that read sysfs or build command lines, against a fake sysfs.</summary>
public sealed class LocalMediaPartsTests
{
    [Fact]
    public void DeviceMapperDevicesAreNamedAsMountRecordsThem()
    {
        using var dir = new TempDir();
        var sys = Path.Combine(dir.Path, "sys");
        Directory.CreateDirectory(Path.Combine(sys, "dm-3", "dm"));
        File.WriteAllText(Path.Combine(sys, "dm-3", "dm", "name"), "vg--solar-v0123\n");
        File.WriteAllText(Path.Combine(sys, "dm-3", "dev"), "253:3\n");
        var dev = Path.Combine(dir.Path, "dev");
        Directory.CreateDirectory(Path.Combine(dev, "vg-solar"));
        File.WriteAllText(Path.Combine(dev, "dm-3"), "");
        File.CreateSymbolicLink(Path.Combine(dev, "vg-solar", "v0123"), "../dm-3");

        var lv = Path.Combine(dev, "vg-solar", "v0123");
        Assert.Equal("dm-3", DeviceNames.KernelName(lv));
        Assert.Equal("/dev/mapper/vg--solar-v0123", DeviceNames.MountSource(lv, sys));
        Assert.Equal("253:3", DeviceNames.MajorMinor(lv, sys));
        // Anything else is known by its real path.
        Assert.Equal(Path.Combine(dev, "dm-3"), DeviceNames.MountSource(Path.Combine(dev, "dm-3"), Path.Combine(dir.Path, "nosys")));
    }

    /// <summary>
    /// Without udev (lvm run with it off, a /dev that is not the host's), /dev/mapper/NAME is a device node of its own,
    /// not a link to ../dm-N: found in the guest, where NodeStage of an LVM volume read the size of "/sys/block/NAME"
    /// (none) and refused a fresh volume as size 0. The node's device number names the kernel's device.
    /// </summary>
    [SkippableFact]
    public async Task ADeviceNodeOfItsOwnIsNamedByItsDeviceNumber()
    {
        Skip.IfNot(Directory.Exists("/sys/dev/block/7:0"), "no loop0 on this machine (/sys/dev/block/7:0)");
        using var dir = new TempDir();
        var node = Path.Combine(dir.Path, "vg--solar-v0123");
        var mknod = System.Diagnostics.Process.Start("mknod", [node, "b", "7", "0"]);
        await mknod.WaitForExitAsync();
        Assert.Equal(0, mknod.ExitCode);
        Assert.Equal("loop0", DeviceNames.KernelName(node));
        Assert.Equal("7:0", FileIdentity.TryBlockDeviceNumberOf(node));
        Assert.Equal("7:0", DeviceNames.MajorMinor(node));
        Assert.Null(FileIdentity.TryBlockDeviceNumberOf(dir.Path));
    }

    [Fact]
    public void DiskIdentityPrefersWhatTheHardwareReports()
    {
        using var dir = new TempDir();
        Write(dir.Path, "sda/device/wwid", "naa.5000c500a1b2c3d4\n");
        Write(dir.Path, "sda/device/serial", "ZA1B2C3\n");
        Write(dir.Path, "nvme0n1/wwid", "eui.0025388b91b2c3d4\n");
        Write(dir.Path, "loop7/loop/backing_file", "/srv/disks/d1.img\n");
        Write(dir.Path, "vdb/serial", "\n");
        Assert.Equal("wwid:naa.5000c500a1b2c3d4", DiskIdentity.Of("sda", dir.Path));
        Assert.Equal("wwid:eui.0025388b91b2c3d4", DiskIdentity.Of("nvme0n1", dir.Path));
        Assert.Equal("loop:/srv/disks/d1.img", DiskIdentity.Of("loop7", dir.Path));
        // No identity, no hand-out: a disk we cannot recognise again cannot be checked before a wipe.
        Assert.Null(DiskIdentity.Of("vdb", dir.Path));
    }

    [Fact]
    public void DiskPatternsMatchOnlyTheLastPart()
    {
        using var dir = new TempDir();
        foreach (var name in new[] { "nvme-A1", "nvme-B2", "nvme-A1-part1", "ata-X" }) File.WriteAllText(Path.Combine(dir.Path, name), "");
        Assert.Equal(["nvme-A1", "nvme-A1-part1", "nvme-B2"], DiskInventory.Match([Path.Combine(dir.Path, "nvme-*")]).Select(Path.GetFileName));
        Assert.Equal(["nvme-B2"], DiskInventory.Match([Path.Combine(dir.Path, "nvme-?2")]).Select(Path.GetFileName));
        Assert.Empty(DiskInventory.Match([Path.Combine(dir.Path, "missing", "*")]));
    }

    [Fact]
    public void DiskWipeAndMkfsCommandLines()
    {
        Assert.Equal(["--all", "--", "/dev/sdb"], DiskPool.WipeArguments("/dev/sdb"));
        Assert.Equal(["--", "/dev/sdb"], DiskPool.DiscardArguments("/dev/sdb"));
        var (program, args) = Filesystems.FormatCommand("/dev/sdb", "ext4", ["-m", "0", "-L", "data"]);
        Assert.Equal("mkfs.ext4", program);
        Assert.Equal(["-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", "-m", "0", "-L", "data", "/dev/sdb"], args);
        Assert.Equal(["-q", "-K", "-m", "reflink=1", "/dev/pmem0"], Filesystems.FormatCommand("/dev/pmem0", "xfs", ["-m", "reflink=1"]).Arguments);
    }

    [Fact]
    public void PmemMountsWithDax()
    {
        Assert.Equal(["noatime", "dax", "nouuid"], StagedFilesystem.MountOptions("xfs", ["noatime"], readOnly: false, dax: true));
        Assert.Equal(["dax=always"], StagedFilesystem.MountOptions("ext4", ["dax=always"], readOnly: false, dax: true));
        Assert.DoesNotContain("dax", StagedFilesystem.MountOptions("ext4", [], readOnly: false));
    }

    private static void Write(string root, string relative, string content)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }
}
