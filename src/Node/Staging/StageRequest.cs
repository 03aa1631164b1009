namespace SolarCsi.Node.Staging;

/// <summary>What NodeStage asks for, already validated.</summary>
public sealed record StageRequest(string VolumeId, string StagingPath, bool Block, string FsType, IReadOnlyList<string> MountFlags,
    IReadOnlyDictionary<string, string> PublishContext, IReadOnlyList<string>? MkfsOptions = null);
