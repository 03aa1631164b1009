namespace SolarCsi.Node;

/// <summary>
/// Where everything a node plugin keeps lives under its state directory: the one place that knows the layout, for
/// the plugin, its preStop hook, `solar node-state` and the benches. Changing a path here moves it for all of them;
/// an installed node keeps its files where they are, so a path is never renamed, only added.
/// </summary>
public sealed record NodeStateLayout(string Root)
{
    /// <summary>The consumer side: journal, remote volumes' client directories, the plugin's pid file.</summary>
    private string NodeDir => Path.Combine(Root, "node");

    /// <summary>One journal entry per volume staged here (<see cref="Staging.NodeJournal"/>).</summary>
    public string Journal => Path.Combine(NodeDir, "journal");

    /// <summary>A remote volume's client directory per volume (its connection, key and attach helpers' files).</summary>
    public string RemoteClients => Path.Combine(NodeDir, "nbd");

    /// <summary>The running plugin's pid, for the preStop hook (the pod shares the host's pid namespace).</summary>
    public string PluginPidFile => Path.Combine(NodeDir, "solar-node.pid");

    /// <summary>Every pool's directory is <c>pools/&lt;media&gt;/&lt;pool&gt;</c>; the image ledger sits at the top.</summary>
    public string Pools => Path.Combine(Root, "pools");

    public string PoolDir(string media, string pool) => Path.Combine(Pools, media, pool);

    /// <summary>Pool directories that exist, whatever their medium.</summary>
    public IEnumerable<string> ExistingPoolDirs() =>
        Directory.Exists(Pools) ? Directory.EnumerateDirectories(Pools).SelectMany(Directory.EnumerateDirectories).Order(StringComparer.Ordinal) : [];

    /// <summary>The storage host's NBD export registry.</summary>
    public string Exports => Path.Combine(Root, "exports");

    public string GroupSnapshots => Path.Combine(Root, "groups");

    /// <summary>The all-in-one controller's own state.</summary>
    public string Controller => Path.Combine(Root, "controller");
}
