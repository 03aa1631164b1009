using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;

namespace SolarCsi.Node.Nbd;

/// <summary>
/// What a node needs to attach an NBD export, carried from ControllerPublish to NodeStage in publish_context.
/// The pre-shared key is per volume and node; it authenticates the node to the export (TLS-PSK), so a node
/// without a current publication cannot read a byte. Every field is validated before it reaches a command line.
/// </summary>
public sealed partial record NbdConnection(string Host, int Port, string Identity, string Key, bool ReadOnly)
{
    public const string HostKey = "solar.csi.dev/nbd-host";
    public const string PortKey = "solar.csi.dev/nbd-port";
    public const string IdentityKey = "solar.csi.dev/nbd-identity";
    public const string PskKey = "solar.csi.dev/nbd-psk";
    public const string ReadOnlyKey = "solar.csi.dev/nbd-readonly";
    /// <summary>The key sealed to the consumer node's certificate (<see cref="SealedKey"/>), in place of <see cref="PskKey"/>.</summary>
    public const string SealedPskKey = "solar.csi.dev/nbd-psk-sealed";
    /// <summary>In place of any key: the consumer is the storage host itself and reads the key from its own export registry.</summary>
    public const string LocalPskKey = "solar.csi.dev/nbd-psk-local";

    /// <param name="sealedKey">the key sealed for the consumer: publish_context then carries it instead of the key itself.</param>
    /// <param name="keyStaysHere">the consumer is the storage host: publish_context carries no key at all.</param>
    public Dictionary<string, string> ToContext(string? sealedKey = null, bool keyStaysHere = false)
    {
        var context = new Dictionary<string, string>
        {
            [HostKey] = Host, [PortKey] = Port.ToString(CultureInfo.InvariantCulture), [IdentityKey] = Identity,
            [ReadOnlyKey] = ReadOnly ? "true" : "false",
        };
        if (keyStaysHere) context[LocalPskKey] = "true";
        else context[sealedKey is null ? PskKey : SealedPskKey] = sealedKey ?? Key;
        return context;
    }

    /// <summary>
    /// publish_context with its key in the open (in memory, for this stage only): a sealed key opened with
    /// <paramref name="unseal"/> (null on a node without control-plane certificates, which cannot open one), a key kept
    /// on this node read with <paramref name="localKey"/>; unchanged when it carries the key itself.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Unsealed(IReadOnlyDictionary<string, string> context, Func<string, string>? unseal,
        Func<string>? localKey = null)
    {
        string key;
        if (context.TryGetValue(SealedPskKey, out var sealedKey))
            key = unseal is null ? throw CsiErrors.InvalidArgument("publish_context carries a sealed NBD key, and this node has no --tls-dir to open it")
                : unseal(sealedKey);
        else if (context.ContainsKey(LocalPskKey))
            key = localKey is null ? throw CsiErrors.InvalidArgument("publish_context says the NBD key is kept on this node, which exports no such volume")
                : localKey();
        else return context;
        var opened = context.Where(kv => kv.Key != SealedPskKey && kv.Key != LocalPskKey).ToDictionary(kv => kv.Key, kv => kv.Value);
        opened[PskKey] = key;
        return opened;
    }

    public static NbdConnection FromContext(IReadOnlyDictionary<string, string> context)
    {
        string Get(string key) => context.TryGetValue(key, out var v) && v.Length > 0
            ? v : throw CsiErrors.InvalidArgument($"publish_context is missing '{key}'; was the volume ControllerPublished to this node?");
        var host = Get(HostKey);
        if (!IPAddress.TryParse(host, out _) && !HostPattern().IsMatch(host))
            throw CsiErrors.InvalidArgument($"publish_context '{HostKey}' is not a host name or address");
        if (!int.TryParse(Get(PortKey), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            throw CsiErrors.InvalidArgument($"publish_context '{PortKey}' is not a TCP port");
        var identity = Get(IdentityKey);
        if (!StorageId.IsValidNode(identity)) throw CsiErrors.InvalidArgument($"publish_context '{IdentityKey}' is not a node name");
        var key = Get(PskKey);
        if (!KeyPattern().IsMatch(key)) throw CsiErrors.InvalidArgument($"publish_context '{PskKey}' is not a 256-bit hex key");
        var readOnly = Get(ReadOnlyKey) switch
        {
            "true" => true,
            "false" => false,
            _ => throw CsiErrors.InvalidArgument($"publish_context '{ReadOnlyKey}' must be true or false"),
        };
        return new NbdConnection(host, port, identity, key, readOnly);
    }

    /// <summary>The identity:key line of a GnuTLS PSK file.</summary>
    public string PskLine => $"{Identity}:{Key}";

    public override string ToString() => $"nbds://{Identity}@{Host}:{Port}{(ReadOnly ? " (ro)" : "")}";

    [GeneratedRegex("^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")]
    private static partial Regex HostPattern();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex KeyPattern();
}
