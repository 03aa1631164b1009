using System.Text.Json;
using System.Text.Json.Serialization;
using SolarCsi.Core.Storage;

namespace SolarCsi.Node.Staging;

/// <summary>One small file per volume in <see cref="NodeStateLayout.Journal"/>, each replaced atomically.</summary>
public sealed class NodeJournal
{
    private readonly string _dir;

    public NodeJournal(string directory)
    {
        _dir = directory;
        Directory.CreateDirectory(_dir);
    }

    /// <summary>The entries in <paramref name="directory"/>, read without an instance (inspection, the preStop hook).</summary>
    public static IReadOnlyList<JournalEntry> ReadAll(string directory) =>
        Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, "*.json").Where(p => !Path.GetFileName(p).StartsWith('.')).Select(Read).OfType<JournalEntry>().ToArray()
            : [];

    /// <summary>Reads one entry file; an unreadable one is moved aside (<see cref="StateFiles"/>) and reads as absent.</summary>
    public static JournalEntry? Read(string path) =>
        StateFiles.Read(path, b => JsonSerializer.Deserialize(b, JournalJson.Default.JournalEntry),
            e => e.VolumeId is { Length: > 0 } && Path.GetFileNameWithoutExtension(path) == e.VolumeId);

    private string PathOf(string volumeId) => Path.Combine(_dir, volumeId + ".json");

    public JournalEntry? Get(string volumeId) => Read(PathOf(volumeId));

    /// <summary>Whether the entry of <paramref name="volumeId"/> was moved aside as unreadable.</summary>
    public bool IsUnreadable(string volumeId) => StateFiles.IsUnreadable(PathOf(volumeId));

    public IReadOnlyList<JournalEntry> All() => ReadAll(_dir);

    public Task SaveAsync(JournalEntry entry, CancellationToken ct) =>
        AtomicFile.WriteAsync(PathOf(entry.VolumeId), JsonSerializer.SerializeToUtf8Bytes(entry, JournalJson.Default.JournalEntry), ct);

    public void Remove(string volumeId) => AtomicFile.Delete(PathOf(volumeId));
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(JournalEntry))]
internal sealed partial class JournalJson : JsonSerializerContext;
