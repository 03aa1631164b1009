using System.Diagnostics;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The solar-node the guest runs: what ships, a NativeAOT executable. SOLAR_VM_NODE_BINARY names one already
/// published; otherwise this checkout's src/Node is published once per test run into artifacts/vm-node (an unchanged
/// tree republishes in seconds) and copied to the guest's share, because the guest cannot see the host's /tmp, where a
/// clone may live. A publish that fails fails the tests: the binary is not optional where the guest runs.
/// </summary>
internal static class GuestNodeBinary
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _published;

    public static async Task<string> InShareOfAsync(VmTestHost g)
    {
        var binary = Environment.GetEnvironmentVariable("SOLAR_VM_NODE_BINARY") is { Length: > 0 } given ? given : await PublishAsync();
        var copy = Path.Combine(g.WorkDir, "node-aot", "solar-node");
        if (!File.Exists(copy))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(binary, copy);
            File.SetUnixFileMode(copy, File.GetUnixFileMode(binary));
        }
        return copy;
    }

    private static async Task<string> PublishAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_published is not null) return _published;
            var repo = new DirectoryInfo(AppContext.BaseDirectory);
            while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "SolarCsi.sln"))) repo = repo.Parent;
            if (repo is null) throw new FileNotFoundException("cannot find the SolarCsi checkout to publish solar-node; set SOLAR_VM_NODE_BINARY");
            var output = Path.Combine(repo.FullName, "artifacts", "vm-node");
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            // Its own RID-specific obj/bin folders: it does not touch the build the running tests load.
            foreach (var a in new[] { "publish", Path.Combine(repo.FullName, "src", "Node"), "-c", "Release", "-r", "linux-x64", "-o", output,
                         "-p:DebugType=none", "-nologo" })
                start.ArgumentList.Add(a);
            using var publish = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet publish");
            var stdout = publish.StandardOutput.ReadToEndAsync();
            var stderr = publish.StandardError.ReadToEndAsync();
            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(10));
            await publish.WaitForExitAsync(limit.Token);
            var binary = Path.Combine(output, "solar-node");
            if (publish.ExitCode != 0 || !File.Exists(binary))
                throw new InvalidOperationException($"dotnet publish of solar-node (NativeAOT) failed ({publish.ExitCode}):\n{await stdout}\n{await stderr}");
            return _published = binary;
        }
        finally
        {
            Gate.Release();
        }
    }
}
