using CliWrap;
using CliWrap.Buffered;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Nbd;

public sealed class TlsCipherPolicyTests
{
    private const string EpycCpuinfo = """
        processor	: 0
        vendor_id	: AuthenticAMD
        flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand
        bugs		: sysret_ss_attrs
        """;

    private const string NoAesCpuinfo = """
        processor	: 0
        flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge sse4_1 sse4_2 popcnt xsave avx
        model name	: Intel(R) Pentium(R) CPU with aes in its name
        """;

    private const string Arm64Cpuinfo = """
        processor	: 0
        BogoMIPS	: 50.00
        Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics
        """;

    [Theory]
    [InlineData(EpycCpuinfo, true)]
    [InlineData(NoAesCpuinfo, false)]
    [InlineData(Arm64Cpuinfo, true)]
    [InlineData("", false)]
    public void AesIsReadFromTheFeatureFlagsOnly(string cpuinfo, bool expected) =>
        Assert.Equal(expected, TlsCipherPolicy.CpuHasAes(cpuinfo));

    [Fact]
    public void TheLauncherPutsItsEnvironmentBeforeTheDaemonsOwn()
    {
        var args = DaemonLauncher.Arguments("/log", "nbdkit", ["file"], ["GNUTLS_SYSTEM_PRIORITY_FILE=/s/p.conf"]);
        Assert.Equal(["GNUTLS_SYSTEM_PRIORITY_FILE=/s/p.conf", "SOLAR_DAEMON_LOG=/log", "setsid"], args.Take(3));
        Assert.Equal(["nbdkit", "file"], args.TakeLast(2));
    }

    /// <summary>
    /// A real nbdkit started with the policy, a real libnbd client that offers every cipher: the session uses
    /// AES-GCM. Without the policy the same pair settles on ChaCha20 (the reason the policy exists).
    /// </summary>
    [SkippableFact]
    public async Task AServerStartedWithThePolicyNegotiatesAesGcm()
    {
        var cpuinfo = await File.ReadAllTextAsync("/proc/cpuinfo");
        Skip.IfNot(TlsCipherPolicy.CpuHasAes(cpuinfo), "this CPU has no AES instructions: the policy leaves GnuTLS's choice alone");
        Skip.If(File.Exists(TlsCipherPolicy.SystemPolicyFile), "this host has its own GnuTLS policy, which the driver respects");
        using var dir = new TempDir();
        var environment = await TlsCipherPolicy.EnvironmentAsync(dir.Path, CancellationToken.None);
        Assert.Equal([$"{TlsCipherPolicy.EnvironmentVariable}={Path.Combine(dir.Path, "gnutls-prefer-aes.conf")}"], environment);
        Assert.Equal(TlsCipherPolicy.PreferAesPolicy, await File.ReadAllTextAsync(Path.Combine(dir.Path, "gnutls-prefer-aes.conf")));

        Assert.StartsWith("GNUTLS_AES_", await NegotiatedCipherAsync(dir.Path, environment));
        Assert.Equal("GNUTLS_CHACHA20_POLY1305_SHA256", await NegotiatedCipherAsync(dir.Path, []));
    }

    private static async Task<string> NegotiatedCipherAsync(string dir, IReadOnlyList<string> serverEnvironment)
    {
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var launcher = new DaemonLauncher(runner, serverEnvironment);
        var key = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var psk = Path.Combine(dir, "keys.psk");
        await File.WriteAllTextAsync(psk, $"alice:{key}\n");
        var image = Path.Combine(dir, "disk.img");
        await using (var f = File.Create(image)) f.SetLength(1 << 20);
        var port = SolarCsi.Local.LocalCluster.FreePort();
        var pidFile = Path.Combine(dir, "srv.pid");
        var pid = await launcher.StartAsync("nbdkit", ["--foreground", "--pidfile", pidFile, "--ipaddr", "127.0.0.1", "--port", port.ToString(),
            "--tls=require", "--tls-psk=" + psk, "file", "file=" + image], pidFile, Path.Combine(dir, "srv.log"), TimeSpan.FromSeconds(10), CancellationToken.None);
        try
        {
            var result = await Cli.Wrap("nbdinfo").WithArguments(["--size", $"nbds://alice@127.0.0.1:{port}/?tls-psk-file={psk}"])
                .WithEnvironmentVariables(e => e.Set("GNUTLS_DEBUG_LEVEL", "4").Set(TlsCipherPolicy.EnvironmentVariable, null))
                .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
            Assert.True(result.ExitCode == 0, result.StandardError);
            Assert.Equal("1048576", result.StandardOutput.Trim());
            const string marker = "Selected cipher suite: ";
            var line = result.StandardError.Split('\n').Single(l => l.Contains(marker, StringComparison.Ordinal));
            return line[(line.IndexOf(marker, StringComparison.Ordinal) + marker.Length)..].Trim();
        }
        finally
        {
            await Pid.StopAsync(pid, kill: true, TimeSpan.FromSeconds(5), CancellationToken.None);
        }
    }
}
