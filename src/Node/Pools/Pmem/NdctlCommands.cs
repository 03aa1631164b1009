using System.Globalization;

namespace SolarCsi.Node.Pools.Pmem;

/// <summary>The command lines the pmem pool runs, as argument arrays (checked against the ndctl v76 man pages).</summary>
public static class NdctlCommands
{
    /// <summary>
    /// ndctl does not round: <paramref name="bytes"/> must already be a multiple of the region's alignment
    /// (see <see cref="PmemSizing"/>), or it refuses with "'--size=' must align to interleave-width".
    /// --name needs a region with namespace labels; label-less regions (memmap=) cannot be carved up at all.
    /// </summary>
    public static (string Program, IReadOnlyList<string> Arguments) CreateNamespace(string region, long bytes, string name) =>
        ("ndctl", ["create-namespace", "--mode", "fsdax", "--region", region, "--size", bytes.ToString(CultureInfo.InvariantCulture), "--name", name]);

    // --idle: a disabled namespace still holds capacity and must be found to be destroyed or reported.
    public static (string Program, IReadOnlyList<string> Arguments) ListNamespaces(string region) =>
        ("ndctl", ["list", "--namespaces", "--idle", "--region", region]);

    public static (string Program, IReadOnlyList<string> Arguments) ListRegions() => ("ndctl", ["list", "--regions"]);

    /// <summary>--force disables an active namespace first; ndctl still refuses one that is mounted.</summary>
    public static (string Program, IReadOnlyList<string> Arguments) DestroyNamespace(string dev) =>
        ("ndctl", ["destroy-namespace", "--force", dev]);

    /// <summary>
    /// A new namespace's data area holds whatever the last one on that range left (destroy zeroes only the info
    /// block); without this a stage would find and mount the previous tenant's filesystem instead of formatting.
    /// --force is what lets wipefs erase a partition table on a block device; the namespace is new, nothing has it mounted.
    /// </summary>
    public static (string Program, IReadOnlyList<string> Arguments) WipeSignatures(string device) => ("wipefs", ["--all", "--force", "--", device]);
}
