namespace SolarCsi.Node.Attach;

/// <summary>
/// How many volumes this node can have attached: the configured --max-volumes, lowered to the number of nbd
/// devices the kernel module was loaded with (nbds_max) where volumes attach through kernel NBD. Kubernetes
/// counts every volume of the driver against this one number, so the smallest real limit is the honest one.
/// </summary>
public static class AttachLimit
{
    public static int Effective(int configured, string nbdModule = "/sys/module/nbd")
    {
        var nbdsMax = Path.Combine(nbdModule, "parameters", "nbds_max");
        return File.Exists(nbdsMax) && int.TryParse(File.ReadAllText(nbdsMax).Trim(), out var devices) && devices > 0
            ? Math.Min(configured, devices)
            : configured;
    }
}
