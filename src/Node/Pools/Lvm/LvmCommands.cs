namespace SolarCsi.Node.Pools.Lvm;

/// <summary>
/// The lvm2 command lines the LVM pool runs, as argument arrays (checked against the lvm2 2.03 man pages).
/// Sizes are bytes with the 'b' unit: lvm rejects byte sizes that are not whole 512-byte sectors, so they are
/// rounded up to a sector here; lvm rounds them up again to whole extents, which is why the pool reads sizes back.
/// </summary>
public static class LvmCommands
{
    /// <summary>Marks LVs this driver made. LVM tags allow only [A-Za-z0-9_+.-/=!:&amp;#]; lvm 2.03.16 accepts these.</summary>
    public const string VolumeTag = "solar.csi.dev/volume";
    public const string SnapshotTag = "solar.csi.dev/snapshot";

    public static readonly string[] ReportColumns =
        ["lv_name", "vg_name", "lv_size", "lv_tags", "pool_lv", "origin", "lv_attr", "lv_path", "data_percent"];

    public static (string Program, IReadOnlyList<string> Arguments) CreateThick(string vg, string lv, long bytes) =>
        ("lvcreate", ["--yes", "--name", lv, "--size", Bytes(bytes), "--wipesignatures", "y", "--zero", "y", "--addtag", VolumeTag, vg]);

    // Thin LVs read zeros until written, so there is nothing to wipe.
    public static (string Program, IReadOnlyList<string> Arguments) CreateThin(string vg, string thinPool, string lv, long bytes) =>
        ("lvcreate", ["--yes", "--name", lv, "--virtualsize", Bytes(bytes), "--thinpool", $"{vg}/{thinPool}", "--addtag", VolumeTag]);

    /// <summary>A thin snapshot: no size, shares the pool; lvm sets its activation-skip flag.</summary>
    public static (string Program, IReadOnlyList<string> Arguments) Snapshot(string vg, string lv, string snapshot) =>
        ("lvcreate", ["--yes", "--snapshot", "--name", snapshot, "--addtag", SnapshotTag, $"{vg}/{lv}"]);

    /// <summary>
    /// A volume restored from a thin snapshot or cloned from a thin volume: itself a thin snapshot of the source,
    /// but with the activation-skip flag cleared so it activates at boot like any volume.
    /// </summary>
    public static (string Program, IReadOnlyList<string> Arguments) VolumeFromThin(string vg, string source, string lv) =>
        ("lvcreate", ["--yes", "--snapshot", "--setactivationskip", "n", "--name", lv, "--addtag", VolumeTag, $"{vg}/{source}"]);

    // --ignoreactivationskip: volumes made before the flag was cleared, or by hand from a snapshot, still carry it.
    public static (string Program, IReadOnlyList<string> Arguments) Activate(string vg, string lv) =>
        ("lvchange", ["--activate", "y", "--ignoreactivationskip", $"{vg}/{lv}"]);

    public static (string Program, IReadOnlyList<string> Arguments) Extend(string vg, string lv, long bytes) =>
        ("lvextend", ["--yes", "--size", Bytes(bytes), $"{vg}/{lv}"]);

    /// <summary>--yes answers the "remove active LV?" prompt (lvm2 treats one --yes like one --force there); open LVs are still refused.</summary>
    public static (string Program, IReadOnlyList<string> Arguments) Remove(string vg, string lv) =>
        ("lvremove", ["--yes", $"{vg}/{lv}"]);

    public static (string Program, IReadOnlyList<string> Arguments) ReportLogicalVolumes(string vg) =>
        ("lvs", ["--reportformat", "json", "--units", "b", "--nosuffix", "--options", string.Join(',', ReportColumns), vg]);

    public static (string Program, IReadOnlyList<string> Arguments) ReportVolumeGroup(string vg) =>
        ("vgs", ["--reportformat", "json", "--units", "b", "--nosuffix", "--options", "vg_name,vg_size,vg_free", vg]);

    public static long RoundUpToSector(long bytes) => (bytes + 511) / 512 * 512;

    private static string Bytes(long bytes) => RoundUpToSector(bytes) + "b";
}
