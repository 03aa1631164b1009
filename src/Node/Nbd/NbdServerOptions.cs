namespace SolarCsi.Node.Nbd;

/// <summary>Where this storage host's exports listen.</summary>
public sealed record NbdServerOptions(string Address, int FirstPort, int LastPort)
{
    public static NbdServerOptions Parse(string address, string range)
    {
        var parts = range.Split('-');
        if (parts.Length != 2 || !int.TryParse(parts[0], out var first) || !int.TryParse(parts[1], out var last) ||
            first is < 1 or > 65535 || last < first || last > 65535)
            throw new FormatException($"NBD port range '{range}' must look like 10809-10999");
        if (!System.Net.IPAddress.TryParse(address, out _)) throw new FormatException($"NBD address '{address}' must be an IP address");
        return new NbdServerOptions(address, first, last);
    }
}
