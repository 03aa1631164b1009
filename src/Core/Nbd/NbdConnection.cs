using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;

namespace SolarCsi.Core.Nbd;

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

    public Dictionary<string, string> ToContext() => new()
    {
        [HostKey] = Host, [PortKey] = Port.ToString(CultureInfo.InvariantCulture), [IdentityKey] = Identity, [PskKey] = Key,
        [ReadOnlyKey] = ReadOnly ? "true" : "false",
    };

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
