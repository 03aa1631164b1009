using System.Diagnostics;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The plugin executables the guest runs: what ships, NativeAOT. SOLAR_VM_NODE_BINARY / SOLAR_VM_CONTROLLER_BINARY
/// name ones already published; otherwise this checkout's project is published once per test run into
/// artifacts/vm-PROJECT (an unchanged tree republishes in seconds) and copied to the guest's share, because the guest
/// cannot see the host's /tmp, where a clone may live. A publish that fails fails the tests: the binary is not optional
/// where the guest runs.
/// </summary>
internal static class GuestBinary
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static readonly Dictionary<string, string> Published = new(StringComparer.Ordinal);

    public static Task<string> NodeAsync(VmTestHost g) => InShareOfAsync(g, "Node", "solar-node", "SOLAR_VM_NODE_BINARY");

    public static Task<string> ControllerAsync(VmTestHost g) => InShareOfAsync(g, "Controller", "solar-controller", "SOLAR_VM_CONTROLLER_BINARY");

    private static async Task<string> InShareOfAsync(VmTestHost g, string project, string name, string variable)
    {
        var binary = Environment.GetEnvironmentVariable(variable) is { Length: > 0 } given ? given : await PublishAsync(project, name);
        var copy = Path.Combine(g.WorkDir, "aot", name);
        if (!File.Exists(copy))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(binary, copy);
            File.SetUnixFileMode(copy, File.GetUnixFileMode(binary));
        }
        return copy;
    }

    private static async Task<string> PublishAsync(string project, string name)
    {
        await Gate.WaitAsync();
        try
        {
            if (Published.TryGetValue(project, out var done)) return done;
            var repo = new DirectoryInfo(AppContext.BaseDirectory);
            while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "SolarCsi.sln"))) repo = repo.Parent;
            if (repo is null) throw new FileNotFoundException($"cannot find the SolarCsi checkout to publish {name}; set the SOLAR_VM_*_BINARY variables");
            var output = Path.Combine(repo.FullName, "artifacts", "vm-" + project.ToLowerInvariant());
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            // Every project it builds (Core, Controller too) gets its obj/bin under --artifacts-path: the build the
            // running suites load, and the one `dotnet test SolarCsi.sln` may still be copying for the sanity suite, is
            // never touched. (Without it, Core was rebuilt in place without its .pdb while the sanity project copied
            // it: MSB3030 "could not copy SolarCsi.Core.pdb", seen once in CI.)
            foreach (var a in new[] { "publish", Path.Combine(repo.FullName, "src", project), "-c", "Release", "-r", "linux-x64", "-o", output,
                         "--artifacts-path", Path.Combine(repo.FullName, "artifacts", "vm-build"), "-p:DebugType=none", "-nologo" })
                start.ArgumentList.Add(a);
            using var publish = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet publish");
            var stdout = publish.StandardOutput.ReadToEndAsync();
            var stderr = publish.StandardError.ReadToEndAsync();
            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(10));
            await publish.WaitForExitAsync(limit.Token);
            var binary = Path.Combine(output, name);
            if (publish.ExitCode != 0 || !File.Exists(binary))
                throw new InvalidOperationException($"dotnet publish of {name} (NativeAOT) failed ({publish.ExitCode}):\n{await stdout}\n{await stderr}");
            return Published[project] = binary;
        }
        finally
        {
            Gate.Release();
        }
    }
}
