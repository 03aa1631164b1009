namespace SolarCsi.Core.Hosting;

/// <summary>
/// Minimal GNU-style flag parsing (<c>--name value</c>, <c>--name=value</c>, repeatable). Unknown flags are an
/// error, so a typo in a DaemonSet never runs with a silent default.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);

    public CommandLine(IEnumerable<string> args, IReadOnlyDictionary<string, string> known)
    {
        Known = known;
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var arg = e.Current;
            if (arg is "--help" or "-h") { HelpRequested = true; continue; }
            if (!arg.StartsWith("--", StringComparison.Ordinal)) throw new FormatException($"unexpected argument '{arg}'");
            string name, value;
            var eq = arg.IndexOf('=');
            if (eq > 0) { name = arg[2..eq]; value = arg[(eq + 1)..]; }
            else
            {
                name = arg[2..];
                if (!e.MoveNext()) throw new FormatException($"flag --{name} needs a value");
                value = e.Current;
            }
            if (!known.ContainsKey(name)) throw new FormatException($"unknown flag --{name}");
            if (!_values.TryGetValue(name, out var list)) _values[name] = list = [];
            list.Add(value);
        }
    }

    public IReadOnlyDictionary<string, string> Known { get; }
    public bool HelpRequested { get; }

    public string Get(string name, string fallback) => _values.TryGetValue(name, out var v) ? v[^1] : fallback;
    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;
    public IReadOnlyList<string> GetAll(string name) => _values.TryGetValue(name, out var v) ? v : [];

    public int GetInt(string name, int fallback) =>
        _values.TryGetValue(name, out var v) ? int.TryParse(v[^1], out var n) ? n : throw new FormatException($"--{name} needs a number") : fallback;

    /// <summary>
    /// The inverse of parsing: <c>--name value</c> pairs for a program whose flags are <paramref name="known"/>. A name the
    /// program does not parse is refused here, where the command line is made, not when the program refuses to start.
    /// </summary>
    public static IReadOnlyList<string> Format(IReadOnlyDictionary<string, string> known, IEnumerable<(string Name, string Value)> flags) =>
    [
        .. flags.SelectMany(f => known.ContainsKey(f.Name)
            ? new[] { "--" + f.Name, f.Value }
            : throw new ArgumentException($"--{f.Name} is not a flag of this program (known: {string.Join(", ", known.Keys)})")),
    ];

    public string Usage(string program) =>
        $"usage: {program} [flags]\n" + string.Join('\n', Known.Select(k => $"  --{k.Key,-28} {k.Value}"));
}
