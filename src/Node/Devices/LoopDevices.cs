using Polly;
using SolarCsi.Core.Errors;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Devices;

/// <summary>losetup, with identity checks: a loop device is reused only if it is bound to the very same file.</summary>
/// <param name="directListing">How bound devices are read without losetup (default <see cref="LoopStatus.TryList"/>);
/// tests that script losetup's answers pass one that returns null.</param>
public sealed class LoopDevices(IProcessRunner runner, Func<IReadOnlyList<LoopDevice>?>? directListing = null)
{
    private readonly Func<IReadOnlyList<LoopDevice>?> _directListing = directListing ?? (() => LoopStatus.TryList());

    // Two concurrent "losetup --find" calls can race for the same free device; the loser sees EBUSY.
    private static readonly ResiliencePipeline AttachRetry = CommandRetry.WhenStderrContains("busy", 5, TimeSpan.FromMilliseconds(100));

    /// <summary>The bound loop devices: read from sysfs and the devices themselves, or from losetup where we cannot.</summary>
    public async Task<IReadOnlyList<LoopDevice>> ListAsync(CancellationToken ct) =>
        _directListing() ?? await ListWithLosetupAsync(ct);

    public async Task<IReadOnlyList<LoopDevice>> ListWithLosetupAsync(CancellationToken ct)
    {
        var result = await runner.RunAsync("losetup", ["--list", "--json", "--output", string.Join(',', LosetupParser.Columns)], ct);
        return LosetupParser.Parse(result.StandardOutput);
    }

    /// <summary>The loop devices bound to this very file (<see cref="LoopDevice.IsBackedBy"/>).</summary>
    public async Task<IReadOnlyList<LoopDevice>> FindByBackingFileAsync(string file, CancellationToken ct)
    {
        var key = FileIdentity.TryKeyOf(file);
        return (await ListAsync(ct)).Where(d => d.IsBackedBy(file, key)).ToArray();
    }

    public async Task<string> AttachAsync(string file, bool readOnly, CancellationToken ct)
    {
        ProcessResult result;
        try
        {
            result = await AttachRetry.ExecuteAsync(async token => await runner.RunAsync("losetup", AttachArguments(file, readOnly), token), ct);
        }
        catch (CommandFailedException e) when (e.StandardError.Contains("Invalid argument", StringComparison.Ordinal))
        {
            // A backing filesystem without direct I/O (tmpfs before Linux 6.6: a state dir on /run, seen in the VM test
            // host) refuses the setup outright; such a file is served through the page cache instead.
            result = await AttachRetry.ExecuteAsync(async token => await runner.RunAsync("losetup", AttachArguments(file, readOnly, directIo: false), token), ct);
        }
        var device = result.StandardOutput.Trim();
        if (!device.StartsWith("/dev/loop", StringComparison.Ordinal))
            throw new IOException($"losetup returned an unexpected device name '{device}'");
        return device;
    }

    public static IReadOnlyList<string> AttachArguments(string file, bool readOnly, bool directIo = true)
    {
        // A volume's sector size must not depend on the filesystem its image sits on: with direct I/O the kernel would
        // take that filesystem's (4096 on xfs), and an ext4 made with 1 KiB blocks on a 512-byte device then no longer
        // mounts once its image is attached from xfs (a restored snapshot, a moved state directory). 512 everywhere;
        // direct I/O (the node's page cache out of the data path) wherever that alignment allows it.
        var args = new List<string> { "--find", "--show", "--sector-size", "512" };
        if (directIo) args.Add("--direct-io=on");
        if (readOnly) args.Add("--read-only");
        args.AddRange(["--", file]);
        return args;
    }

    public Task DetachAsync(string device, CancellationToken ct) => runner.RunAsync("losetup", ["--detach", device], ct);

    public static readonly TimeSpan ReleaseWait = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Detaches <paramref name="device"/> from <paramref name="backingFile"/> and returns only once the kernel has let
    /// go. A device still open elsewhere (udev probing it after the unmount, a stray reader) is only marked to clear
    /// at its last close; a caller told "detached" then would find the image still in use — DeleteVolume answered
    /// FAILED_PRECONDITION right after an OK NodeUnstage (bench-lifecycle, 8 in flight). Past the wait it is UNAVAILABLE,
    /// and the retry finds the device gone or waits again.
    /// </summary>
    public async Task DetachAsync(string device, string backingFile, CancellationToken ct, TimeSpan? wait = null)
    {
        var key = FileIdentity.TryKeyOf(backingFile);
        await runner.RunAsync("losetup", ["--detach", device], ct);
        var deadline = DateTime.UtcNow + (wait ?? ReleaseWait);
        while ((await ListAsync(ct)).Any(l => l.Name == device && l.IsBackedBy(backingFile, key)))
        {
            if (DateTime.UtcNow >= deadline)
                throw SolarCsi.Core.Errors.CsiErrors.Unavailable($"{device} is still bound to {backingFile} {(wait ?? ReleaseWait).TotalSeconds:0} s after its detach: " +
                    "something still holds it open; it is released at the last close, and a retry finds it gone");
            await Task.Delay(25, ct);
        }
    }

    /// <summary>Makes the loop device pick up a grown backing file.</summary>
    public Task RefreshCapacityAsync(string device, CancellationToken ct) => runner.RunAsync("losetup", ["--set-capacity", device], ct);
}
