using Microsoft.Extensions.Logging;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Media;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Attach;

/// <summary>The attach paths this node has, one per <see cref="AttachPath"/>; a medium says which one serves it.</summary>
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

    public IBlockAttacher ForMedia(string media) => MediaCatalog.Of(media).AttachedAs switch
    {
        AttachPath.ImageFile => Loop,
        AttachPath.Remote => Nbd,
        AttachPath.MountedFilesystem => tmpfs,
        AttachPath.LocalDevice => device,
        var path => throw CsiErrors.Internal($"media '{media}' is attached as {path}, which this node has no attacher for"),
    };

    /// <summary>The attach path a journal entry names; null when this node has no such path (never in one plugin's life).</summary>
    public IBlockAttacher? FindKind(string kind) => All.FirstOrDefault(a => a.Kind == kind);

    public IBlockAttacher ForKind(string kind) =>
        FindKind(kind) ?? throw CsiErrors.Internal($"journal names attach kind '{kind}', which this node does not have");
}
