namespace SolarCsi.Tests.Vm;

/// <summary>POSIX shell quoting, so an argument array reaches the guest's program exactly as the driver built it.</summary>
public static class Shell
{
    public static string Quote(string argument) => "'" + argument.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    public static string Join(IEnumerable<string> arguments) => string.Join(' ', arguments.Select(Quote));
}
