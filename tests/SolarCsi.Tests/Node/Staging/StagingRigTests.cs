namespace SolarCsi.Tests.Node.Staging;

/// <summary>A fresh <see cref="StagingRig"/> per test, disposed after it.</summary>
public abstract class StagingRigTests : IDisposable
{
    private protected readonly StagingRig _rig = new();
    private protected static CancellationToken Ct => CancellationToken.None;

    public void Dispose() => _rig.Dispose();
}
