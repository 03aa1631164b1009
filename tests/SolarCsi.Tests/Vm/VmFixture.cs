namespace SolarCsi.Tests.Vm;

/// <summary>
/// One guest for every test in <see cref="VmCollection"/>, booted once (TCG takes ~10 s) and killed at the end.
/// Missing qemu or assets make the tests skip with the reason; a guest that has its assets but does not boot fails them.
/// </summary>
public sealed class VmFixture : IAsyncLifetime
{
    private VmTestHost? _host;

    public string? SkipReason { get; private set; }

    public VmTestHost Host => _host ?? throw new InvalidOperationException(SkipReason ?? "the test guest is not running");

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("SOLAR_VM_TESTS") == "0")
        {
            SkipReason = "SOLAR_VM_TESTS=0";
            return;
        }
        var (assets, missing) = VmAssets.Find();
        if (assets is null)
        {
            SkipReason = missing;
            return;
        }
        _host = await VmTestHost.StartAsync(assets, new VmOptions(), CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        if (_host is not null) await _host.DisposeAsync();
    }
}

/// <summary>Tests that share the guest run one after another (the guest runs one command at a time anyway).</summary>
[CollectionDefinition(Name)]
public sealed class VmCollection : ICollectionFixture<VmFixture>
{
    public const string Name = "vm";
}
