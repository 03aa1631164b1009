namespace SolarCsi.Node.Pools.Disk;

/// <summary>
/// What makes a disk the same disk after a reboot or a re-plug, from sysfs: the WWID or serial the hardware
/// reports, or for a loop device the file it serves. Device names (sdb, nvme1n1) move between boots, so a
/// disk is handed out, staged and wiped only while its identity still matches the one recorded.
/// </summary>
public static class DiskIdentity
{
    public static string? Of(string kernelName, string sysBlock = "/sys/class/block")
    {
        var dir = Path.Combine(sysBlock, kernelName);
        foreach (var (file, kind) in new[] { ("wwid", "wwid"), ("device/wwid", "wwid"), ("serial", "serial"), ("device/serial", "serial"), ("loop/backing_file", "loop") })
        {
            var path = Path.Combine(dir, file);
            if (!File.Exists(path)) continue;
            var value = File.ReadAllText(path).Trim();
            if (value.Length > 0) return $"{kind}:{value}";
        }
        return null;
    }
}
