namespace SolarCsi.Node.Inspection;

/// <summary>One volume as the journal records it next to what the kernel shows.</summary>
public sealed record VolumeState(
    string VolumeId, string Phase, string StagingPath, string? Device, bool Block,
    bool DeviceAttached, bool StagingMounted, IReadOnlyList<string> Targets, IReadOnlyList<string> TargetsMounted);

/// <summary>A step that removes residue; <see cref="Kind"/> is "unmount" or "detach-loop".</summary>
public sealed record CleanupAction(string Kind, string Path);

/// <summary>
/// A disagreement between the journal and the kernel. <see cref="Actions"/> is empty where the only safe fix is
/// the node plugin's own (a re-stage, its reconciler) or a human's (data a pod may still use).
/// </summary>
public sealed record Finding(string Kind, string? VolumeId, string Detail, IReadOnlyList<CleanupAction> Actions);

public sealed record NodeReport(string StateDir, IReadOnlyList<VolumeState> Volumes, IReadOnlyList<Finding> Findings);
