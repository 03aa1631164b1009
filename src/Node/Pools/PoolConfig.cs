using System.Text.Json;
using System.Text.Json.Serialization;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Ids;

namespace SolarCsi.Node.Pools;

/// <summary>
/// The local media pools a node offers, read from the file named by --pools-config (in a cluster, the node
/// ConfigMap). Unknown keys, duplicate pool names and unusable values stop the plugin at start-up with the reason:
/// a silently ignored typo would place volumes where nobody meant them.
/// </summary>
public sealed record PoolConfig(
    IReadOnlyList<PoolConfig.Tmpfs> TmpfsPools,
    IReadOnlyList<PoolConfig.Lvm> LvmPools,
    IReadOnlyList<PoolConfig.Disk> DiskPools,
    IReadOnlyList<PoolConfig.Pmem> PmemPools)
{
    public static readonly PoolConfig Empty = new([], [], [], []);

    public sealed record Tmpfs(string Name, long CapacityBytes);
    public sealed record Lvm(string Name, string VolumeGroup, string? ThinPool);
    public sealed record Disk(string Name, IReadOnlyList<string> Paths, long MinSizeBytes);
    public sealed record Pmem(string Name, string Region);

    public static PoolConfig Load(string path) => Parse(File.ReadAllText(path), path);

    public static PoolConfig Parse(string json, string origin = "pool configuration")
    {
        PoolConfigFile file;
        try
        {
            file = JsonSerializer.Deserialize(json, PoolConfigJson.Default.PoolConfigFile) ?? throw new FormatException($"{origin} is empty");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{origin}: {e.Message}");
        }
        var config = new PoolConfig(
            (file.Tmpfs ?? []).Select(p => new Tmpfs(NameOf(p.Name, "tmpfs"), Bytes(p.Capacity, "tmpfs", p.Name, "capacity"))).ToArray(),
            (file.Lvm ?? []).Select(p => new Lvm(NameOf(p.Name, "lvm"), LvmName(p.VolumeGroup, p.Name, "volumeGroup")!,
                p.ThinPool is null ? null : LvmName(p.ThinPool, p.Name, "thinPool"))).ToArray(),
            (file.Disk ?? []).Select(p => new Disk(NameOf(p.Name, "disk"), DiskPaths(p.Paths, p.Name),
                p.MinSize is null ? 0 : Bytes(p.MinSize, "disk", p.Name, "minSize"))).ToArray(),
            (file.Pmem ?? []).Select(p => new Pmem(NameOf(p.Name, "pmem"), Region(p.Region, p.Name))).ToArray());
        foreach (var (media, names) in new[]
                 {
                     ("tmpfs", config.TmpfsPools.Select(p => p.Name)), ("lvm", config.LvmPools.Select(p => p.Name)),
                     ("disk", config.DiskPools.Select(p => p.Name)), ("pmem", config.PmemPools.Select(p => p.Name)),
                 })
            if (names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1) is { } dup)
                throw new FormatException($"{origin}: two {media} pools are named '{dup.Key}'");
        return config;
    }

    private static string NameOf(string? name, string media) =>
        name is not null && StorageId.IsValidPool(name) ? name : throw new FormatException($"{media} pool name '{name}' is not a valid pool name (lowercase DNS label)");

    private static long Bytes(string? text, string media, string? pool, string key)
    {
        if (text is null) throw new FormatException($"{media} pool '{pool}': '{key}' is required");
        var bytes = Quantity.Parse(text);
        return bytes > 0 ? bytes : throw new FormatException($"{media} pool '{pool}': '{key}' must be positive");
    }

    // LVM names: letters, digits and + _ . -, not starting with '-'; we also refuse '/' so a name cannot escape /dev/<vg>.
    private static string? LvmName(string? text, string? pool, string key) =>
        text is { Length: > 0 and <= 127 } && text[0] != '-' && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '_' or '.' or '-') && text is not ("." or "..")
            ? text : throw new FormatException($"lvm pool '{pool}': '{key}' '{text}' is not a valid LVM name");

    private static IReadOnlyList<string> DiskPaths(IReadOnlyList<string>? paths, string? pool)
    {
        if (paths is null || paths.Count == 0) throw new FormatException($"disk pool '{pool}': 'paths' needs at least one pattern");
        foreach (var p in paths)
            if (!p.StartsWith("/dev/", StringComparison.Ordinal) || p.Contains("..") || Path.GetDirectoryName(p)!.Contains('*') || Path.GetDirectoryName(p)!.Contains('?'))
                throw new FormatException($"disk pool '{pool}': path pattern '{p}' must be under /dev/ with wildcards (* ?) only in its last part");
        return paths;
    }

    private static string Region(string? text, string? pool) =>
        text is not null && System.Text.RegularExpressions.Regex.IsMatch(text, "^region[0-9]{1,4}$")
            ? text : throw new FormatException($"pmem pool '{pool}': 'region' '{text}' is not an ndctl region name (regionN)");
}

internal sealed record PoolConfigFile(
    IReadOnlyList<TmpfsPoolEntry>? Tmpfs,
    IReadOnlyList<LvmPoolEntry>? Lvm,
    IReadOnlyList<DiskPoolEntry>? Disk,
    IReadOnlyList<PmemPoolEntry>? Pmem);

internal sealed record TmpfsPoolEntry(string? Name, string? Capacity);
internal sealed record LvmPoolEntry(string? Name, string? VolumeGroup, string? ThinPool);
internal sealed record DiskPoolEntry(string? Name, IReadOnlyList<string>? Paths, string? MinSize);
internal sealed record PmemPoolEntry(string? Name, string? Region);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(PoolConfigFile))]
internal sealed partial class PoolConfigJson : JsonSerializerContext;
