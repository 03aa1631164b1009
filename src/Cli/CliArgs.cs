namespace SolarCsi.Cli;

/// <summary>The few flag shapes the operator CLI takes: --flag value, --switch, and positional words.</summary>
internal sealed class CliArgs(string[] args)
{
    public string? Value(string flag)
    {
        var i = Array.IndexOf(args, flag);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public string Require(string flag) => Value(flag) ?? throw new UsageException($"{flag} is required");

    public bool Has(string flag) => args.Contains(flag);

    /// <summary>Words that are neither flags nor flag values, in order.</summary>
    public IReadOnlyList<string> Positional(params string[] flagsWithValues)
    {
        var words = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (flagsWithValues.Contains(args[i])) { i++; continue; }
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) words.Add(args[i]);
        }
        return words;
    }

    /// <summary>--output json for scripts, a table for people (the default).</summary>
    public bool Json => (Value("--output") ?? "table") switch
    {
        "json" => true,
        "table" => false,
        var other => throw new UsageException($"--output must be json or table, not '{other}'"),
    };
}

internal sealed class UsageException(string message) : Exception(message);
