namespace SolarCsi.Core.Mounts;

/// <summary>One line of /proc/self/mountinfo.</summary>
public sealed record MountEntry(
    int Id, int ParentId, string MajorMinor, string Root, string MountPoint,
    IReadOnlyList<string> Options, string FsType, string Source, IReadOnlyList<string> SuperOptions)
{
    public bool ReadOnly => Options.Contains("ro");
}
