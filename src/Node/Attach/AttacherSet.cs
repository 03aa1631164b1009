using SolarCsi.Core.Errors;
using SolarCsi.Core.Validation;

namespace SolarCsi.Node.Attach;

/// <summary>The attach paths this node has, and which one serves a media.</summary>
public sealed class AttacherSet(IBlockAttacher loop, IBlockAttacher nbd, IBlockAttacher tmpfs, IBlockAttacher device)
{
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

    public IBlockAttacher ForKind(string kind) =>
        All.FirstOrDefault(a => a.Kind == kind) ?? throw CsiErrors.Internal($"journal names attach kind '{kind}', which this node does not have");
}
