namespace SolarCsi.Node.Devices;

public static class BlkidParser
{
    public static IReadOnlyDictionary<string, string> ParseExport(string output)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = line.IndexOf('=');
            if (eq > 0) values[line[..eq]] = line[(eq + 1)..];
        }
        return values;
    }
}
