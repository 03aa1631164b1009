using System.Globalization;

namespace SolarCsi.SanityTests;

/// <summary>Reads this process's effective Linux capabilities, to skip (with a reason) what the kernel would refuse.</summary>
internal static class HostCapabilities
{
    public const int SysResource = 24;

    public static bool Has(int capability)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        var mask = ulong.Parse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return (mask & (1UL << capability)) != 0;
    }
}
