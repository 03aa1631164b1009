using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Nbd;

/// <summary>
/// Revoking a writer is the single-writer fence: it must hold when the storage host's state filesystem is full — the
/// server is killed before anything is written, and the revocation is still recorded, so no restart re-admits the
/// old writer.
/// </summary>
public sealed class NbdRevocationTests
{
    [SkippableFact]
    public async Task AWriterIsCutAndItsKeyRemovedEvenOnAFullDisk()
    {
        Skip.IfNot(Environment.UserName == "root", "mounting a tiny tmpfs needs root");
        Skip.If(HostTools.Locate("nbdkit") is null, "nbdkit is not installed");
        using var dir = new TempDir();
        var state = Path.Combine(dir.Path, "exports");
        Directory.CreateDirectory(state);
        var image = Path.Combine(dir.Path, "volume.img");
        await using (var file = new FileStream(image, FileMode.CreateNew)) file.SetLength(16 << 20);
        var small = new SmallTmpfs(state, "256k");
        try
        {
            var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
            var exports = new NbdExports(state, new NbdServerOptions("127.0.0.1", 24950, 24959), new DaemonLauncher(runner), NullLogger<NbdExports>.Instance);
            const string volume = "nbd~default~host~v000000000000000000000001";
            var admitted = await exports.AdmitAsync(volume, image, "node-a", readOnly: false, RateLimits.None, ["127.0.0.1"], CancellationToken.None);
            Assert.Null(await NbdReachability.ProblemAsync(admitted.Host, admitted.Port, TimeSpan.FromSeconds(2), CancellationToken.None));
            Assert.True(exports.IsRunning(volume));

            small.Fill();
            await Assert.ThrowsAnyAsync<IOException>(() => File.WriteAllBytesAsync(Path.Combine(state, "probe"), new byte[8192]));

            await exports.RevokeAsync(volume, "node-a", CancellationToken.None);

            Assert.False(exports.IsRunning(volume));
            Assert.NotNull(await NbdReachability.ProblemAsync(admitted.Host, admitted.Port, TimeSpan.FromSeconds(2), CancellationToken.None));
            Assert.DoesNotContain("node-a", await File.ReadAllTextAsync(Path.Combine(state, volume, "keys.psk")));
            Assert.Empty(exports.Get(volume)!.Identities);
            // What a restarted plugin does with the registry: nothing is served to the revoked node.
            await exports.ReconcileAsync(CancellationToken.None);
            Assert.False(exports.IsRunning(volume));
        }
        finally
        {
            foreach (var pid in Directory.EnumerateDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out var p) ? p : 0)
                         .Where(p => p > 0 && Pid.CommandLine(p) is { } argv && argv.Any(a => a.Contains(state, StringComparison.Ordinal))))
                Pid.Signal(pid, 9);
            small.Dispose();
        }
    }

    [SkippableFact]
    public async Task AnUnreadableExportRecordDoesNotOpenTheFence()
    {
        Skip.If(HostTools.Locate("nbdkit") is null, "nbdkit is not installed");
        using var dir = new TempDir();
        var (state, image, exports) = await ExportsInAsync(dir, 24960);
        const string volume = "nbd~default~host~v000000000000000000000002";
        try
        {
            var admitted = await exports.AdmitAsync(volume, image, "node-a", readOnly: false, RateLimits.None, ["127.0.0.1"], CancellationToken.None);
            var pid = Pid.Read(Path.Combine(state, volume, "nbdkit.pid"));
            Assert.NotNull(pid);
            await File.WriteAllTextAsync(Path.Combine(state, volume, "export.json"), "{\"volumeId\": \"tor");

            // The writer is unpublished while the record cannot be read: it is cut and its key is gone all the same.
            await exports.RevokeAsync(volume, "node-a", CancellationToken.None);
            Assert.Null(Pid.CommandLine(pid!.Value));
            Assert.NotNull(await NbdReachability.ProblemAsync(admitted.Host, admitted.Port, TimeSpan.FromSeconds(2), CancellationToken.None));
            Assert.DoesNotContain("node-a", await File.ReadAllTextAsync(Path.Combine(state, volume, "keys.psk")));
            // And no new writer is admitted over a record nobody can read.
            var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() =>
                exports.AdmitAsync(volume, image, "node-b", readOnly: false, RateLimits.None, ["127.0.0.1"], CancellationToken.None));
            Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, refused.StatusCode);
        }
        finally
        {
            await exports.RemoveAsync(volume, CancellationToken.None);
        }
    }

    /// <summary>An export whose server died (its data-plane pod restarted) is started again by the periodic pass while a
    /// node is admitted, and not once nobody is.</summary>
    [SkippableFact]
    public async Task ADeadExportIsStartedAgainOnlyWhileANodeIsAdmitted()
    {
        Skip.If(HostTools.Locate("nbdkit") is null, "nbdkit is not installed");
        using var dir = new TempDir();
        var (state, image, exports) = await ExportsInAsync(dir, 24970);
        const string volume = "nbd~default~host~v000000000000000000000003";
        try
        {
            var admitted = await exports.AdmitAsync(volume, image, "node-a", readOnly: false, RateLimits.None, ["127.0.0.1"], CancellationToken.None);
            var first = Pid.Read(Path.Combine(state, volume, "nbdkit.pid"))!.Value;
            await Pid.StopAsync(first, kill: true, TimeSpan.FromSeconds(5), CancellationToken.None);
            Assert.False(exports.IsRunning(volume));

            await exports.RestoreStoppedAsync(CancellationToken.None);
            Assert.True(exports.IsRunning(volume));
            Assert.NotEqual(first, Pid.Read(Path.Combine(state, volume, "nbdkit.pid")));
            Assert.Null(await NbdReachability.ProblemAsync(admitted.Host, admitted.Port, TimeSpan.FromSeconds(2), CancellationToken.None));

            await exports.RevokeAsync(volume, "node-a", CancellationToken.None);
            await exports.RestoreStoppedAsync(CancellationToken.None);
            Assert.False(exports.IsRunning(volume));
        }
        finally
        {
            await exports.RemoveAsync(volume, CancellationToken.None);
        }
    }

    /// <summary>An export registry in <paramref name="dir"/>, ten ports from <paramref name="firstPort"/>, and a 16 MiB image.</summary>
    private static async Task<(string State, string Image, NbdExports Exports)> ExportsInAsync(TempDir dir, int firstPort)
    {
        var state = Path.Combine(dir.Path, "exports");
        var image = Path.Combine(dir.Path, "volume.img");
        await using (var file = new FileStream(image, FileMode.CreateNew)) file.SetLength(16 << 20);
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        return (state, image, new NbdExports(state, new NbdServerOptions("127.0.0.1", firstPort, firstPort + 9), new DaemonLauncher(runner),
            NullLogger<NbdExports>.Instance));
    }
}
