using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;

namespace SolarCsi.Tests.Core;

/// <summary>Parsers fed with output captured from the real tools on Debian 12 (util-linux 2.38).</summary>
public sealed class ToolOutputParserTests
{
    [Fact]
    public void ParsesLosetupJson()
    {
        const string json = """
            {
               "loopdevices": [
                  {
                     "name": "/dev/loop0",
                     "back-file": "/tmp/t.img",
                     "back-ino": 11657602,
                     "back-maj:min": "     254:0  ",
                     "ro": false,
                     "dio": true
                  },{
                     "name": "/dev/loop1",
                     "back-file": "/var/lib/solar/v1.img (deleted)",
                     "back-ino": "42",
                     "back-maj:min": "8:1",
                     "ro": true,
                     "dio": false
                  }
               ]
            }
            """;
        var devices = LosetupParser.Parse(json);
        Assert.Equal(new LoopDevice("/dev/loop0", "/tmp/t.img", 11657602, "254:0", false, true), devices[0]);
        Assert.Equal(new LoopDevice("/dev/loop1", "/var/lib/solar/v1.img", 42, "8:1", true, false), devices[1]);
    }

    [Fact]
    public void EmptyLosetupOutputMeansNoDevices() => Assert.Empty(LosetupParser.Parse(""));

    [Fact]
    public void ParsesBlkidExport()
    {
        var values = BlkidParser.ParseExport("DEVNAME=/dev/loop0\nUUID=9b526104-8b85-492d-b8fc-6f6516faa3c1\nVERSION=1.0\nBLOCK_SIZE=1024\nTYPE=ext4\nUSAGE=filesystem\n");
        Assert.Equal("ext4", values["TYPE"]);
        Assert.Equal("filesystem", values["USAGE"]);
    }

    [Fact]
    public void ParsesMountInfoIncludingEscapesAndOptionalFields()
    {
        const string text = """
            21 26 0:20 / /proc rw,relatime - proc proc rw
            36 35 98:0 /mnt1 /mnt\040with\040space rw,noatime master:1 shared:5 - ext3 /dev/root rw,errors=continue
            90 26 7:3 / /var/lib/kubelet/pods/p/volumes/v ro,relatime shared:60 - ext4 /dev/loop3 ro
            """;
        var entries = MountInfoParser.Parse(text);
        Assert.Equal(3, entries.Count);
        Assert.Equal("/mnt with space", entries[1].MountPoint);
        Assert.Equal("/mnt1", entries[1].Root);
        Assert.Equal("ext3", entries[1].FsType);
        Assert.Equal("/dev/root", entries[1].Source);
        Assert.Equal("7:3", entries[2].MajorMinor);
        Assert.True(entries[2].ReadOnly);
        Assert.False(entries[0].ReadOnly);
    }

    [Fact]
    public void RecognisesABindMountOfADeviceNode()
    {
        // Captured after `mount --bind /dev/loop0 /tmp/btarget`.
        var entry = MountInfoParser.Parse("41 26 0:6 /loop0 /tmp/btarget rw,relatime - devtmpfs devtmpfs rw,size=12334416k,nr_inodes=3083604,mode=755")[0];
        Assert.True(entry.Shows("/dev/loop0"));
        Assert.False(entry.Shows("/dev/loop1"));
        // Without udev, /dev/mapper/NAME is a node of its own in devtmpfs, and a bind of it shows that path (found in the VM).
        var mapper = MountInfoParser.Parse("52 26 0:5 /mapper/solarvm-v0123 /run/pods/p/dev rw - devtmpfs devtmpfs rw,size=4k")[0];
        Assert.True(mapper.Shows("/dev/mapper/solarvm-v0123"));
        Assert.False(mapper.Shows("/dev/mapper/solarvm-v0124"));
        var fs = MountInfoParser.Parse("90 26 7:3 / /s rw - ext4 /dev/loop3 rw")[0];
        Assert.True(fs.Shows("/dev/loop3"));
        Assert.False(fs.Shows("/dev/loop0"));
    }

    [Fact]
    public void ParsesThisMachinesMountTable()
    {
        var entries = MountInfoParser.Parse(File.ReadAllText("/proc/self/mountinfo"));
        Assert.Contains(entries, e => e.MountPoint == "/proc" && e.FsType == "proc");
    }
}
