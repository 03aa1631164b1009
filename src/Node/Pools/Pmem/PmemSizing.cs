namespace SolarCsi.Node.Pools.Pmem;

/// <summary>
/// How big a namespace to ask ndctl for so that its usable size covers a request. An fsdax namespace keeps its page
/// map on the device (map=dev: 64 bytes per 4 KiB page, 1/64 of it) behind an info block, padded to the fsdax
/// alignment, so it comes out smaller than asked (80 GiB asked gives 78.75 GiB); and ndctl refuses sizes that are
/// not a multiple of the region alignment rather than rounding them.
/// </summary>
public static class PmemSizing
{
    public const long MiB = 1 << 20;

    /// <summary>x86 default for fsdax; a larger one (ppc64: 16 MiB) shows in the namespace ndctl made, which is then made again.</summary>
    public const long DefaultFsdaxAlign = 2 * MiB;

    /// <summary>ndctl refuses fsdax namespaces under 16 MiB; also the kernel's default region alignment.</summary>
    public const long Minimum = 16 * MiB;

    /// <summary>
    /// The unit a namespace size must be a multiple of. The kernel's region "align" already folds in the interleave
    /// ways; without it (older kernels) 16 MiB covers the fsdax alignment for 1, 2, 4 and 8-way interleave sets.
    /// </summary>
    public static long UnitOf(long? regionAlign) => regionAlign is > 0 and var a ? Lcm(a, Minimum) : Minimum;

    public static long RawSizeFor(long capacityBytes, long unit, long fsdaxAlign = DefaultFsdaxAlign)
    {
        // usable >= raw - raw/64 - info block (8 KiB) - 2 alignments of padding, hence raw >= (need) * 64/63.
        var need = capacityBytes + 8192 + 2 * fsdaxAlign;
        var raw = need + (need + 62) / 63;
        return Math.Max(Minimum, AlignUp(raw, unit));
    }

    public static long AlignUp(long bytes, long unit) => (bytes + unit - 1) / unit * unit;

    private static long Lcm(long a, long b) => a / Gcd(a, b) * b;
    private static long Gcd(long a, long b) => b == 0 ? a : Gcd(b, a % b);
}
