namespace SolarCsi.Core.Storage;

/// <summary>
/// Reading the plugin's state files (pool records, the node journal, the export registry, group records). A file
/// that cannot be parsed never stops the plugin and is never deleted: it is moved aside as NAME.unreadable (kept for
/// whoever repairs it), reported, and the reader carries on as if it were absent — the callers then refuse to create
/// or delete over what it described (see <see cref="IsUnreadable"/>).
/// </summary>
public static class StateFiles
{
    public const string UnreadableSuffix = ".unreadable";

    /// <summary>Told of every file moved aside: (original path, where it went, why). The plugins log it.</summary>
    public static Action<string, string, string> OnUnreadable { get; set; } = (_, _, _) => { };

    /// <summary>
    /// The parsed file, or null when it does not exist or could not be read (then it is moved aside). A parse that
    /// returns null or fails <paramref name="isValid"/> counts as unreadable.
    /// </summary>
    public static T? Read<T>(string path, Func<byte[], T?> parse, Func<T, bool>? isValid = null) where T : class
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
        string why;
        try
        {
            if (parse(bytes) is { } value && (isValid?.Invoke(value) ?? true)) return value;
            why = bytes.Length == 0 ? "the file is empty" : "it does not hold what it should";
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or InvalidOperationException or NotSupportedException
                                      or ArgumentException or Google.Protobuf.InvalidProtocolBufferException or Google.Protobuf.InvalidJsonException)
        {
            why = e.Message;
        }
        var aside = MoveAside(path);
        if (aside is not null) OnUnreadable(path, aside, why);
        return null;
    }

    /// <summary>
    /// Whether <paramref name="path"/> was moved aside as unreadable and not repaired since (its owner must not be
    /// created over or deleted). Putting a valid file back at the path repairs it; the set-aside copy stays as evidence.
    /// </summary>
    public static bool IsUnreadable(string path) => File.Exists(path + UnreadableSuffix) && !File.Exists(path);

    /// <summary>Every file moved aside under <paramref name="dir"/>.</summary>
    public static IReadOnlyList<string> FindUnreadable(string dir) =>
        Directory.Exists(dir)
            ? Directory.EnumerateFiles(dir, "*" + UnreadableSuffix, SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>The original path of a file moved aside.</summary>
    public static string OriginalOf(string unreadable) => unreadable[..^UnreadableSuffix.Length];

    private static string? MoveAside(string path)
    {
        var aside = path + UnreadableSuffix;
        try
        {
            // A second unreadable version of the same file is kept too, under a dated name; the first is the evidence.
            if (File.Exists(aside)) aside = $"{path}.{DateTime.UtcNow:yyyyMMddTHHmmssfff}{UnreadableSuffix}";
            File.Move(path, aside);
            return aside;
        }
        catch (IOException)
        {
            return null; // someone else moved or replaced it meanwhile: nothing left to set aside
        }
    }
}
