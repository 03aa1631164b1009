using System.Text.RegularExpressions;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// Both images carry every program the node plugin runs. The programs are read from the sources (every literal
/// program name handed to the process runner or the daemon launcher, and the (program, arguments) pairs that
/// command builders return), so a new tool in the code fails this test until the images have it.
/// </summary>
public sealed partial class ImageToolsTests
{
    // In every debian:bookworm-slim image already (Essential), so the Dockerfile need not name them.
    private static readonly HashSet<string> InBaseImage = ["coreutils", "dash", "tar"];

    // The LVM and pmem pools call these (docs/local-media.md); listed as well as scanned, so a change in how their
    // command lines are written cannot drop them from the images unnoticed.
    private static readonly string[] LocalMediaTools = ["wipefs", "blkdiscard", "lvcreate", "lvremove", "lvextend", "lvchange", "lvs", "vgs", "ndctl"];

    public static IReadOnlySet<string> ProgramsTheNodeRuns()
    {
        var programs = new SortedSet<string>(StringComparer.Ordinal);
        var sources = new[] { "src/Core", "src/Node" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(Manifests.RepoRoot, d), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal));
        foreach (var file in sources)
            foreach (Match m in ProgramLiteral().Matches(File.ReadAllText(file)))
                programs.Add(m.Groups["p"].Value);
        // The launcher's own wrapper around every daemon: env … setsid --fork sh -c 'exec "$0" "$@"' PROGRAM ….
        var wrapper = DaemonLauncher.Arguments("log", "PROGRAM", []);
        programs.UnionWith(wrapper.TakeWhile(a => a != "PROGRAM").Where(a => !a.Contains('=') && !a.StartsWith('-') && !a.Contains(' ')));
        programs.UnionWith(LocalMediaTools);
        return programs;
    }

    [GeneratedRegex("""(?:RunAsync|StartAsync)\(\s*"(?<p>[^"]+)"|\(\s*"(?<p>[a-z0-9][a-z0-9._+-]*)"\s*,\s*\[""")]
    private static partial Regex ProgramLiteral();

    [Fact]
    public void TheSourceScanFindsTheProgramsWeKnowTheNodeRuns()
    {
        var programs = ProgramsTheNodeRuns();
        foreach (var known in new[] { "losetup", "mount", "mkfs.ext4", "xfs_growfs", "nbdkit", "nbdfuse", "nbd-client", "fsfreeze", "env", "setsid", "sh" })
            Assert.Contains(known, programs);
    }

    [Fact]
    public void TheLocalImageScriptCopiesEveryProgram()
    {
        var script = File.ReadAllText(Path.Combine(Manifests.RepoRoot, "deploy/image/build-local-image.sh"));
        var list = ToolsArray().Match(script);
        Assert.True(list.Success, "build-local-image.sh has no tools=( … ) list");
        var tools = list.Groups[1].Value.Split((char[])[' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        Assert.All(ProgramsTheNodeRuns(), p => Assert.True(tools.Contains(p), $"build-local-image.sh does not copy {p}"));
        // The lv*/vg* commands are symlinks to lvm: the binary itself must be copied too.
        Assert.Contains("lvm", tools);
    }

    [GeneratedRegex(@"^tools=\(([^)]*)\)", RegexOptions.Multiline)]
    private static partial Regex ToolsArray();

    [Fact]
    public void TheDockerfileInstallsThePackageOfEveryProgram()
    {
        var dockerfile = File.ReadAllText(Path.Combine(Manifests.RepoRoot, "deploy/image/Dockerfile"));
        var install = AptInstall().Match(dockerfile);
        Assert.True(install.Success, "the Dockerfile has no apt-get install line");
        var packages = install.Groups[1].Value.Split((char[])[' ', '\\', '\n'], StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        packages.UnionWith(InBaseImage);
        foreach (var program in ProgramsTheNodeRuns())
        {
            // The same table names the package in the node's FAILED_PRECONDITION for a missing tool.
            Assert.True(HostTools.Packages.TryGetValue(program, out var package),
                $"the node runs {program}: add its Debian package to {nameof(HostTools)}.{nameof(HostTools.Packages)} and to the Dockerfile");
            Assert.True(packages.Contains(package), $"the Dockerfile does not install {package} (for {program})");
        }
        foreach (var required in new[] { "nbdkit", "libnbd-bin", "nbd-client", "e2fsprogs", "xfsprogs", "util-linux", "lvm2", "ndctl", "fuse3", "kmod" })
            Assert.Contains(required, packages);
        // Both images start the same way, so the manifests work with either.
        Assert.Contains("ENTRYPOINT [\"/solar/solar-node\"]", dockerfile);
    }

    [GeneratedRegex(@"apt-get install -y --no-install-recommends((?:[^&]|&(?!&))*)&&")]
    private static partial Regex AptInstall();
}
