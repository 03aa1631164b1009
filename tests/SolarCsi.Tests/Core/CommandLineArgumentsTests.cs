using SolarCsi.Core.Errors;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Core;

/// <summary>The exact argument arrays handed to the tools: no shell, and '--' before anything path-like.</summary>
public sealed class CommandLineArgumentsTests
{
    [Fact]
    public void MountArguments()
    {
        Assert.Equal(["-t", "ext4", "-o", "noatime,discard", "--", "/dev/loop3", "/var/lib/kubelet/x"],
            LinuxMounter.MountArguments("/dev/loop3", "/var/lib/kubelet/x", "ext4", ["noatime", "discard"]));
        Assert.Equal(["-o", "bind,ro", "--", "/a", "/b"], LinuxMounter.MountArguments("/a", "/b", null, ["bind", "ro"]));
    }

    [Fact]
    public void LosetupAttachArguments()
    {
        Assert.Equal(["--find", "--show", "--sector-size", "512", "--direct-io=on", "--", "/s/v.img"], LoopDevices.AttachArguments("/s/v.img", false));
        Assert.Equal(["--find", "--show", "--sector-size", "512", "--direct-io=on", "--read-only", "--", "/s/v.img"], LoopDevices.AttachArguments("/s/v.img", true));
    }

    /// <summary>A backing filesystem without direct I/O (tmpfs before Linux 6.6) refuses the setup: the file is attached
    /// through the page cache instead, and nothing else is retried that way.</summary>
    [Fact]
    public async Task AFileThatRefusesDirectIoIsAttachedWithoutIt()
    {
        var runner = new ScriptedRunner(line => line.Contains("--direct-io=on")
            ? new ProcessResult(1, "", "losetup: /run/v.img: failed to set up loop device: Invalid argument")
            : new ProcessResult(0, "/dev/loop7\n", ""));
        Assert.Equal("/dev/loop7", await new LoopDevices(runner, () => []).AttachAsync("/run/v.img", readOnly: false, CancellationToken.None));
        Assert.Equal(["losetup --find --show --sector-size 512 --direct-io=on -- /run/v.img", "losetup --find --show --sector-size 512 -- /run/v.img"],
            runner.Calls);

        var busy = new ScriptedRunner(_ => new ProcessResult(1, "", "losetup: /s/v.img: failed to set up loop device: Permission denied"));
        await Assert.ThrowsAsync<CommandFailedException>(() => new LoopDevices(busy, () => []).AttachAsync("/s/v.img", readOnly: false, CancellationToken.None));
        Assert.Single(busy.Calls);
    }

    /// <summary>fork's EAGAIN/ENOMEM, however wrapped, is the node running out of processes: RESOURCE_EXHAUSTED, not an
    /// internal error; any other start failure is not that.</summary>
    [Fact]
    public void AStartThatFailsForLackOfProcessesIsResourceExhaustion()
    {
        Assert.Contains("errno 11", ProcessRunner.OutOfProcesses(new InvalidOperationException("Failed to start a process", new System.ComponentModel.Win32Exception(11))));
        Assert.Contains("errno 12", ProcessRunner.OutOfProcesses(new System.ComponentModel.Win32Exception(12)));
        Assert.Null(ProcessRunner.OutOfProcesses(new InvalidOperationException("Failed to start a process", new System.ComponentModel.Win32Exception(2))));
        Assert.Null(ProcessRunner.OutOfProcesses(new IOException("disk")));
    }

    [Fact]
    public void FilesystemCommands()
    {
        Assert.Equal("mkfs.ext4", Filesystems.FormatCommand("/dev/loop1", "ext4").Program);
        Assert.Equal("/dev/loop1", Filesystems.FormatCommand("/dev/loop1", "ext4").Arguments[^1]);
        AssertCommand("mkfs.xfs", ["-q", "-K", "/dev/loop1"], Filesystems.FormatCommand("/dev/loop1", "xfs"));
        AssertCommand("resize2fs", ["/dev/loop1"], Filesystems.GrowCommand("/dev/loop1", "/m", "ext4"));
        AssertCommand("xfs_growfs", ["/m"], Filesystems.GrowCommand("/dev/loop1", "/m", "xfs"));
        Assert.Throws<ArgumentException>(() => Filesystems.FormatCommand("/dev/loop1", "ntfs"));
    }

    [Fact]
    public void Ext4SizeComesFromTheSuperblock()
    {
        // dumpe2fs -h of a 64 MiB image made by mkfs.ext4 1.47 (Debian 12), trimmed.
        const string dumpe2fs = """
            Filesystem volume name:   <none>
            Block count:              65536
            Reserved block count:     3276
            Free blocks:              55863
            Block size:               1024
            Fragment size:            1024
            """;
        Assert.Equal(64L << 20, Filesystems.ParseExt4Size(dumpe2fs));
        Assert.Null(Filesystems.ParseExt4Size("dumpe2fs 1.47.0 (5-Feb-2023)\nBad magic number in super-block"));
    }

    private static void AssertCommand(string program, string[] args, (string Program, IReadOnlyList<string> Arguments) actual)
    {
        Assert.Equal(program, actual.Program);
        Assert.Equal(args, actual.Arguments);
    }

    [Fact]
    public async Task UnmountRetriesWhileBusyThenGivesUp()
    {
        var runner = new ScriptedRunner(_ => throw new CommandFailedException("umount /x", 32, "umount: /x: target is busy."));
        await Assert.ThrowsAsync<CommandFailedException>(() => new LinuxMounter(runner).UnmountAsync("/x", CancellationToken.None));
        Assert.Equal(5, runner.Calls.Count);
        Assert.All(runner.Calls, c => Assert.Equal("umount /x", c));
    }

    [Fact]
    public async Task UnmountDoesNotRetryOtherFailures()
    {
        var runner = new ScriptedRunner(_ => throw new CommandFailedException("umount /x", 32, "umount: /x: not mounted."));
        await Assert.ThrowsAsync<CommandFailedException>(() => new LinuxMounter(runner).UnmountAsync("/x", CancellationToken.None));
        Assert.Single(runner.Calls);
    }

    [Fact]
    public async Task BlankDeviceIsOnlyBlkidExitTwo()
    {
        var blank = new BlockDevices(new ScriptedRunner(_ => new ProcessResult(2, "", "")));
        Assert.Empty(await blank.ProbeAsync("/dev/loop9", CancellationToken.None));
        var ext4 = new BlockDevices(new ScriptedRunner(_ => new ProcessResult(0, "TYPE=ext4\n", "")));
        Assert.Equal("ext4", (await ext4.ProbeAsync("/dev/loop9", CancellationToken.None))["TYPE"]);
    }
}

/// <summary>Records command lines and answers them from a script; the OS is exercised for real elsewhere.</summary>
internal sealed class ScriptedRunner(Func<string, ProcessResult> answer) : IProcessRunner
{
    public List<string> Calls { get; } = [];

    public Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken ct, TimeSpan? timeout = null,
        IReadOnlyCollection<int>? okExitCodes = null)
    {
        var line = program + " " + string.Join(' ', arguments);
        Calls.Add(line);
        var result = answer(line);
        if (!(okExitCodes ?? [0]).Contains(result.ExitCode)) throw new CommandFailedException(line, result.ExitCode, result.StandardError);
        return Task.FromResult(result);
    }
}
