using System.Text.RegularExpressions;

namespace SolarCsi.Core.Hosting;

public static partial class CsiDriverName
{
    /// <summary>The CSI spec's rule: at most 63 characters, domain-name style.</summary>
    public static string Require(string name) =>
        name.Length <= 63 && Pattern().IsMatch(name) ? name : throw new FormatException($"driver name '{name}' is not a valid CSI plugin name");

    [GeneratedRegex("^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")]
    private static partial Regex Pattern();
}
