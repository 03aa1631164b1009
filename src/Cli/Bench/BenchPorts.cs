namespace SolarCsi.Cli;

/// <summary>
/// NBD export ports for each bench's plugins, away from the range the demo and the test suites use (21000 and up):
/// the machine is shared, and an export takes a port that was free when it looked, so two runs must not share a range.
/// </summary>
internal static class BenchPorts
{
    public const int Footprint = 23000;
    public const int Overhead = 24000;
    public const int Conformance = 25000;
    public const int Lifecycle = 26000;
    public const int Nbd = 27000;
    public const int Snapshot = 28000;
    /// <summary>Up to 1000 export ports for the scale bench's storage host, then its nodes' own ranges.</summary>
    public const int NbdScale = 30000;
}
