namespace SolarCsi.Node.Staging;

public enum StagePhase { Staging, Staged, Unstaging }

/// <summary>
/// What this node intends for a volume, written before the OS is touched so that a restart can finish or undo
/// the work. The kernel's view is re-checked against it; it never replaces that view.
/// </summary>
public sealed record JournalEntry(
    string VolumeId,
    StagePhase Phase,
    string StagingPath,
    string AttachKind,
    string Source,
    string? Device,
    bool Block,
    string FsType,
    bool Formatted,
    bool ReadOnly,
    List<string> MountFlags,
    List<PublishTarget> Targets);

public sealed record PublishTarget(string Path, bool ReadOnly);
