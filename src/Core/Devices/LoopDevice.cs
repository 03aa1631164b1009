namespace SolarCsi.Core.Devices;

/// <summary>A loop device as losetup reports it; BackingInode identifies the file even if it was renamed.</summary>
public sealed record LoopDevice(string Name, string BackingFile, ulong BackingInode, string BackingMajorMinor, bool ReadOnly, bool DirectIo);
