using SolarCsi.Core.Validation;

namespace SolarCsi.Tests.Core;

public sealed class MkfsRulesTests
{
    [Theory]
    [InlineData("ext4", "-d etc")]
    [InlineData("ext4", "-dvar")]
    [InlineData("ext4", "-l badblocks.txt")]
    [InlineData("ext4", "-m 0 -z undo")]
    [InlineData("ext4", "-J device=sdb1")]
    [InlineData("ext4", "-Jdevice=sdb1")]
    [InlineData("xfs", "-p etc")]
    [InlineData("xfs", "-c options=etc")]
    [InlineData("xfs", "-l logdev=sdb,size=64m")]
    [InlineData("xfs", "-r rtdev=sdc")]
    [InlineData("xfs", "-d file,name=etc")]
    public void OptionsThatReachHostFilesOrDevicesAreRefused(string fsType, string options) =>
        Assert.NotNull(MkfsRules.WhyRefused(fsType, options.Split(' ')));

    [Theory]
    [InlineData("ext4", "-m 0 -L data")]
    [InlineData("ext4", "-O ^has_journal -E root_owner=0:0")]
    [InlineData("ext4", "-J size=64")]
    [InlineData("ext4", "-L file")]
    [InlineData("ext4", "-T largefile -i 65536")]
    [InlineData("xfs", "-d su=64k,sw=4")]
    [InlineData("xfs", "-l size=64m -L name")]
    [InlineData("xfs", "-m crc=1,reflink=1")]
    public void OptionsThatShapeTheVolumesOwnFilesystemPass(string fsType, string options) =>
        Assert.Null(MkfsRules.WhyRefused(fsType, options.Split(' ')));
}
