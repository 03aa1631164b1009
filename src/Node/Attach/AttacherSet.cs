using Microsoft.Extensions.Logging;
using SolarCsi.Core.Devices;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Mounts;
using SolarCsi.Core.Processes;
using SolarCsi.Core.Validation;

namespace SolarCsi.Node.Attach;

/// <summary>The attach paths this node has, and which one serves a media.</summary>
public sealed class AttacherSet(IBlockAttacher loop, IBlockAttacher nbd, IBlockAttacher tmpfs, IBlockAttacher device)
{
    /// <summary>
    /// The attach paths of this host, as the plugin uses them and `solar node-state` reads them: kernel nbd where the
    /// module exists, nbdfuse + loop elsewhere (decided once, at start).
    /// </summary>
    public static AttacherSet ForThisHost(IProcessRunner runner, LoopDevices loops, IMounter mounter, DaemonLauncher launcher, ILoggerFactory loggers) =>
        new(new LoopFileAttacher(loops),
            NbdKernelAttacher.IsSupported()
                ? new NbdKernelAttacher(runner, launcher, loggers.CreateLogger<NbdKernelAttacher>())
                : new NbdFuseAttacher(loops, mounter, runner, launcher, loggers.CreateLogger<NbdFuseAttacher>()),
            new TmpfsAttacher(mounter), new LocalDeviceAttacher());

    public IBlockAttacher Loop { get; } = loop;
    /// <summary>Kernel nbd where the module exists, nbdfuse + loop elsewhere (decided once at start-up).</summary>
    public IBlockAttacher Nbd { get; } = nbd;

    private IEnumerable<IBlockAttacher> All => [Loop, Nbd, tmpfs, device];

    public IBlockAttacher ForMedia(string media) => media switch
    {
        VolumeParameters.FileMedia => Loop,
        VolumeParameters.NbdMedia => Nbd,
        VolumeParameters.TmpfsMedia => tmpfs,
        VolumeParameters.LvmMedia or VolumeParameters.DiskMedia or VolumeParameters.PmemMedia => device,
        _ => throw CsiErrors.InvalidArgument($"no attach path for media '{media}'"),
    };

    /// <summary>The attach path a journal entry names; null when this node has no such path (never in one plugin's life).</summary>
    public IBlockAttacher? FindKind(string kind) => All.FirstOrDefault(a => a.Kind == kind);

    public IBlockAttacher ForKind(string kind) =>
        FindKind(kind) ?? throw CsiErrors.Internal($"journal names attach kind '{kind}', which this node does not have");
}
