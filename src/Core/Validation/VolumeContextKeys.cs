namespace SolarCsi.Core.Validation;

/// <summary>Keys of the volume_context the controller returns and kubelet hands back to NodeStage.</summary>
public static class VolumeContextKeys
{
    public const string Media = "solar.csi.dev/media";
    public const string Pool = "solar.csi.dev/pool";
    public const string MkfsOptions = "solar.csi.dev/mkfs-options";
}
