using SolarCsi.Core.Errors;

namespace SolarCsi.Core.Validation;

public static class NameRules
{
    /// <summary>CSI allows any Unicode name of bounded size except most control characters.</summary>
    public static string RequireCsiName(string? name, string field = "name")
    {
        if (string.IsNullOrEmpty(name)) throw CsiErrors.InvalidArgument($"{field} is required");
        if (System.Text.Encoding.UTF8.GetByteCount(name) > 128)
            throw CsiErrors.InvalidArgument($"{field} exceeds 128 bytes");
        if (name.Any(c => c is < '\t' or '\v' or '\f' or (> '\r' and < ' ') || (c >= '\u007f' && c <= '\u009f')))
            throw CsiErrors.InvalidArgument($"{field} contains control characters");
        return name;
    }
}
