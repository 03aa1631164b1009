namespace SolarCsi.Local;

public sealed record PluginBinaries(string Controller, string Node, string? Cli);

/// <summary>
/// Finds the built plugin executables: $SOLAR_BIN_DIR if set (a published tree), else the build output of this
/// checkout in the same configuration as the calling program.
/// </summary>
public static class BinaryLocator
{
    public static PluginBinaries Find()
    {
        if (Environment.GetEnvironmentVariable("SOLAR_BIN_DIR") is { Length: > 0 } dir)
            return Require(Path.Combine(dir, "solar-controller"), Path.Combine(dir, "solar-node"), Path.Combine(dir, "solar"));
        return FromCheckout();
    }

    /// <summary>The build output of this checkout, whatever $SOLAR_BIN_DIR says (the footprint bench compares both).</summary>
    public static PluginBinaries FromCheckout()
    {
        var baseDir = AppContext.BaseDirectory;
        var configuration = baseDir.Contains("/bin/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var repo = new DirectoryInfo(baseDir);
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "SolarCsi.sln"))) repo = repo.Parent;
        if (repo is null) throw new FileNotFoundException("cannot find the SolarCsi checkout; set SOLAR_BIN_DIR");
        string Output(string project, string name) => Path.Combine(repo.FullName, "src", project, "bin", configuration, "net10.0", name);
        return Require(Output("Controller", "solar-controller"), Output("Node", "solar-node"), Output("Cli", "solar"));
    }

    /// <summary>The plugins must exist; the operator CLI is reported only when it was built.</summary>
    private static PluginBinaries Require(string controller, string node, string cli)
    {
        foreach (var file in new[] { controller, node })
            if (!File.Exists(file)) throw new FileNotFoundException($"plugin binary {file} is missing; build the solution first", file);
        return new PluginBinaries(controller, node, File.Exists(cli) ? cli : null);
    }
}
