namespace SolarCsi.Core.Ids;

/// <summary>The topology segment of a node. Local volumes are accessible only from the node in their id.</summary>
public static class NodeTopology
{
    public const string Key = "topology.solar.csi.dev/node";

    public static Dictionary<string, string> Of(string nodeId) => new() { [Key] = nodeId };
}
