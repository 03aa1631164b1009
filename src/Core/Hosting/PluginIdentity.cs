using System.Reflection;
using Csi.V1;

namespace SolarCsi.Core.Hosting;

public sealed record PluginIdentity(string DriverName, IReadOnlyList<PluginCapability> Capabilities)
{
    public const string DefaultDriverName = "solar.csi.dev";

    public string Version { get; } =
        typeof(PluginIdentity).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static PluginCapability Service(PluginCapability.Types.Service.Types.Type type) =>
        new() { Service = new PluginCapability.Types.Service { Type = type } };

    public static PluginCapability OnlineExpansion() =>
        new() { VolumeExpansion = new PluginCapability.Types.VolumeExpansion { Type = PluginCapability.Types.VolumeExpansion.Types.Type.Online } };
}
