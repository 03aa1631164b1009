using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Csi.V1;
using Google.Protobuf.Reflection;
using SolarCsi.Controller;
using SolarCsi.Controller.Csi;
using SolarCsi.Node.Csi;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// Every capability the two plugins advertise, named as the CSI spec names it ("Controller CREATE_DELETE_VOLUME",
/// "Plugin VolumeExpansion ONLINE"). Read from the code the binaries run: the public capability lists, the
/// GetCapabilities methods that build theirs inline (called on instances without state: they read none), and the
/// identities Program.cs builds at start-up, which only its source shows.
/// </summary>
internal static partial class AdvertisedCapabilities
{
    public static readonly string[] ProgramFiles = ["src/Controller/Program.cs", "src/Node/Program.cs"];

    public static IReadOnlySet<string> All()
    {
        var all = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var c in ControllerService.Capabilities) all.Add("Controller " + SpecName(c));

        var group = (GroupControllerService)RuntimeHelpers.GetUninitializedObject(typeof(GroupControllerService));
        foreach (var c in group.GroupControllerGetCapabilities(new(), null!).GetAwaiter().GetResult().Capabilities) all.Add("GroupController " + SpecName(c.Rpc.Type));

        var node = (NodeService)RuntimeHelpers.GetUninitializedObject(typeof(NodeService));
        foreach (var c in node.NodeGetCapabilities(new(), null!).GetAwaiter().GetResult().Capabilities) all.Add("Node " + SpecName(c.Rpc.Type));

        foreach (var c in ControllerPlane.PluginCapabilities) all.Add(PluginName(c));
        foreach (var file in ProgramFiles)
        {
            var source = File.ReadAllText(Path.Combine(Manifests.RepoRoot, file));
            foreach (Match m in ServiceInProgram().Matches(source))
                all.Add("Plugin " + SpecName(Enum.Parse<PluginCapability.Types.Service.Types.Type>(m.Groups[1].Value)));
            if (source.Contains("PluginIdentity.OnlineExpansion()", StringComparison.Ordinal)) all.Add("Plugin VolumeExpansion ONLINE");
        }
        return all;
    }

    /// <summary>The spec's name of a generated enum value (protoc keeps it in [OriginalName]).</summary>
    public static string SpecName<T>(T value) where T : struct, Enum =>
        typeof(T).GetField(value.ToString())?.GetCustomAttribute<OriginalNameAttribute>()?.Name
        ?? throw new InvalidDataException($"{typeof(T).Name}.{value} has no OriginalName");

    private static string PluginName(PluginCapability c) => c.TypeCase switch
    {
        PluginCapability.TypeOneofCase.Service => "Plugin " + SpecName(c.Service.Type),
        PluginCapability.TypeOneofCase.VolumeExpansion => "Plugin VolumeExpansion " + SpecName(c.VolumeExpansion.Type),
        var other => throw new InvalidDataException($"plugin capability of kind {other}"),
    };

    [GeneratedRegex(@"PluginIdentity\.Service\(\s*PluginCapability\.Types\.Service\.Types\.Type\.(\w+)\s*\)")]
    private static partial Regex ServiceInProgram();
}
