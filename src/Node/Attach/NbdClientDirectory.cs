using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SolarCsi.Core.Storage;
using SolarCsi.Node.Nbd;

namespace SolarCsi.Node.Attach;

/// <summary>
/// The per-volume directory on a consuming node: where the export is, the node's PSK (0600, never logged), and
/// the attach path's own files (FUSE mount point, pid files, logs). The directory is the attach "source".
/// </summary>
public static class NbdClientDirectory
{
    private const string ConnectionFile = "connection.json";
    private const string PskFile = "client.psk";

    public static async Task WriteAsync(string dir, NbdConnection connection, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        await AtomicFile.WriteAsync(Path.Combine(dir, PskFile), Encoding.ASCII.GetBytes(connection.PskLine + "\n"), ct);
        var endpoint = new NbdEndpoint(connection.Host, connection.Port, connection.Identity, connection.ReadOnly);
        await AtomicFile.WriteAsync(Path.Combine(dir, ConnectionFile), JsonSerializer.SerializeToUtf8Bytes(endpoint, NbdClientJson.Default.NbdEndpoint), ct);
    }

    public static NbdEndpoint Read(string dir) =>
        JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(dir, ConnectionFile)), NbdClientJson.Default.NbdEndpoint)
        ?? throw new InvalidDataException($"{dir}/{ConnectionFile} is empty");

    public static string PskPath(string dir) => Path.Combine(dir, PskFile);

    /// <summary>The local proxy that speaks TLS-PSK to the export: nbdkit's nbd plugin.</summary>
    public static IReadOnlyList<string> ProxyArguments(string dir, NbdEndpoint endpoint) =>
    [
        "nbdkit", Nbd.NbdServerOptions.ThreadsArgument, "nbd", "hostname=" + endpoint.Host, "port=" + endpoint.Port, "tls=require", "tls-psk=" + PskPath(dir),
        "tls-username=" + endpoint.Identity,
    ];
}

public sealed record NbdEndpoint(string Host, int Port, string Identity, bool ReadOnly);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(NbdEndpoint))]
internal sealed partial class NbdClientJson : JsonSerializerContext;
