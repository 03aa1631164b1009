using System.Text.Json;
using System.Text.Json.Serialization;
using SolarCsi.Core.Storage;

namespace SolarCsi.Node.Staging;

/// <summary>One small file per volume under the state directory, each replaced atomically.</summary>
public sealed class NodeJournal
{
    private readonly string _dir;

    public NodeJournal(string stateDir)
    {
        _dir = DirectoryOf(stateDir);
        Directory.CreateDirectory(_dir);
    }

    /// <summary>The entries' directory under <paramref name="stateDir"/> (the prestop hook reads it without an instance).</summary>
    public static string DirectoryOf(string stateDir) => Path.Combine(stateDir, "journal");

    /// <summary>Reads one entry file.</summary>
    /// <summary>Reads one entry file; an unreadable one is moved aside (<see cref="StateFiles"/>) and reads as absent.</summary>
    public static JournalEntry? Read(string path) =>
        StateFiles.Read(path, b => JsonSerializer.Deserialize(b, JournalJson.Default.JournalEntry),
            e => e.VolumeId is { Length: > 0 } && Path.GetFileNameWithoutExtension(path) == e.VolumeId);

    private string PathOf(string volumeId) => Path.Combine(_dir, volumeId + ".json");

    public JournalEntry? Get(string volumeId) => Read(PathOf(volumeId));

    /// <summary>Whether the entry of <paramref name="volumeId"/> was moved aside as unreadable.</summary>
    public bool IsUnreadable(string volumeId) => StateFiles.IsUnreadable(PathOf(volumeId));

    public IReadOnlyList<JournalEntry> All() =>
        Directory.EnumerateFiles(_dir, "*.json")
            .Where(p => !Path.GetFileName(p).StartsWith('.'))
            .Select(Read)
            .OfType<JournalEntry>().ToArray();

    public Task SaveAsync(JournalEntry entry, CancellationToken ct) =>
        AtomicFile.WriteAsync(PathOf(entry.VolumeId), JsonSerializer.SerializeToUtf8Bytes(entry, JournalJson.Default.JournalEntry), ct);

    public void Remove(string volumeId) => AtomicFile.Delete(PathOf(volumeId));
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(JournalEntry))]
internal sealed partial class JournalJson : JsonSerializerContext;
