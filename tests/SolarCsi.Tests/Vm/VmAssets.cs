namespace SolarCsi.Tests.Vm;

/// <summary>
/// What the test guest boots, as tests/vm/prepare-assets.sh leaves it in $SOLAR_VM_ASSETS (default
/// /var/cache/solar-vm), plus qemu and the guest agent. <see cref="Find"/> detects; it never installs.
/// </summary>
public sealed record VmAssets(string Qemu, string Kernel, string Initramfs, string Modules, string Agent)
{
    public static string CacheDir =>
        Environment.GetEnvironmentVariable("SOLAR_VM_ASSETS") is { Length: > 0 } dir ? dir : "/var/cache/solar-vm";

    /// <summary>The assets, or why the VM tests cannot run on this machine.</summary>
    public static (VmAssets? Assets, string? Missing) Find()
    {
        const string fix = "; run tests/vm/prepare-assets.sh";
        var qemu = OnPath("qemu-system-x86_64");
        if (qemu is null) return (null, "qemu-system-x86_64 is not installed" + fix);
        var cache = CacheDir;
        var kernel = Path.Combine(cache, "vmlinuz");
        var initramfs = Path.Combine(cache, "initramfs.cpio.gz");
        var modules = Path.Combine(cache, "modules");
        foreach (var path in new[] { kernel, initramfs })
            if (!File.Exists(path)) return (null, $"{path} is missing{fix}");
        if (!Directory.Exists(modules)) return (null, $"{modules} is missing{fix}");
        // The agent is copied next to the test assembly; the guest sees it there through the read-only host root.
        var agent = Path.Combine(AppContext.BaseDirectory, "vm", "guest-agent.sh");
        if (!File.Exists(agent)) return (null, $"{agent} is missing (the test project copies tests/vm/guest-agent.sh)");
        return (new VmAssets(qemu, kernel, initramfs, modules, agent), null);
    }

    private static string? OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program)).FirstOrDefault(File.Exists);
}
