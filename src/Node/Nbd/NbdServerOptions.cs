namespace SolarCsi.Node.Nbd;

/// <summary>Where this storage host's exports listen.</summary>
/// <param name="RequestRateFilter">nbdkit-solar-iops-filter.so (native/nbdkit-iops-filter), or null where it is not
/// installed: then an iopsLimit cannot be enforced and is refused.</param>
/// <param name="PeersFilter">nbdkit-solar-peers-filter.so (native/nbdkit-peers-filter), or null where it is not installed: then
/// an export cannot refuse connections by address and only its TLS-PSK keys keep strangers out (logged at start).</param>
public sealed record NbdServerOptions(string Address, int FirstPort, int LastPort, string? RequestRateFilter = null, string? PeersFilter = null)
{
    public const string RequestRateFilterFile = "nbdkit-solar-iops-filter.so";
    public const string PeersFilterFile = "nbdkit-solar-peers-filter.so";

    /// <summary>
    /// Worker threads per connection for every nbdkit we run (exports and the attach path's proxies), instead of
    /// nbdkit's 16. Each thread costs its stack and malloc arena: an export with its one client connection measured
    /// 3.1 MiB PSS with 16, 1.7 MiB with 4, and on this 2-core machine 4 moved as many bytes and 4 KiB reads as 16
    /// (bench/RESULTS.md, addendum of session 6).
    /// </summary>
    public const string ThreadsArgument = "--threads=4";

    /// <summary>
    /// The filter given by --nbd-iops-filter (which must exist), else the one published beside the executable.
    /// </summary>
    public static string? FindRequestRateFilter(string? configured) => FindFilter(configured, RequestRateFilterFile, "request-rate");

    /// <summary>The filter given by --nbd-peers-filter (which must exist), else the one published beside the executable.</summary>
    public static string? FindPeersFilter(string? configured) => FindFilter(configured, PeersFilterFile, "peers");

    private static string? FindFilter(string? configured, string file, string what)
    {
        if (configured is not null)
            return File.Exists(configured) ? Path.GetFullPath(configured) : throw new FormatException($"{what} filter '{configured}' does not exist");
        var beside = Path.Combine(AppContext.BaseDirectory, file);
        return File.Exists(beside) ? beside : null;
    }

    public static NbdServerOptions Parse(string address, string range, string? requestRateFilter = null, string? peersFilter = null)
    {
        var parts = range.Split('-');
        if (parts.Length != 2 || !int.TryParse(parts[0], out var first) || !int.TryParse(parts[1], out var last) ||
            first is < 1 or > 65535 || last < first || last > 65535)
            throw new FormatException($"NBD port range '{range}' must look like 10809-10999");
        if (!System.Net.IPAddress.TryParse(address, out _)) throw new FormatException($"NBD address '{address}' must be an IP address");
        return new NbdServerOptions(address, first, last, requestRateFilter, peersFilter);
    }
}
