using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;

namespace SolarCsi.Controller.Csi;

/// <summary>
/// Pagination over ids in ordinal order: the token is the last id returned, so volumes created or deleted
/// between pages neither repeat nor shift the rest.
/// </summary>
public static class PageToken
{
    public static (IReadOnlyList<T> Page, string Next) Slice<T>(IEnumerable<T> items, Func<T, string> idOf, int maxEntries, string startingToken)
    {
        if (maxEntries < 0) throw CsiErrors.InvalidArgument("max_entries must not be negative");
        if (startingToken.Length > 0 && !StorageId.TryParse(startingToken, out _))
            throw CsiErrors.Aborted($"starting_token '{StorageId.Printable(startingToken)}' is not valid");
        var ordered = items.OrderBy(idOf, StringComparer.Ordinal)
            .Where(i => startingToken.Length == 0 || string.CompareOrdinal(idOf(i), startingToken) > 0)
            .ToArray();
        if (maxEntries == 0 || ordered.Length <= maxEntries) return (ordered, "");
        var page = ordered[..maxEntries];
        return (page, idOf(page[^1]));
    }
}
