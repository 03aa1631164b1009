namespace SolarCsi.Core.Hosting;

/// <summary>Set once start-up work (journal replay, reconciliation) is done; Probe reports it.</summary>
public sealed class Readiness
{
    private volatile bool _ready;
    public bool IsReady => _ready;
    public void MarkReady() => _ready = true;
}
