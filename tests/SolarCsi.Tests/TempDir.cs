namespace SolarCsi.Tests;

internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("solar-test-").FullName;
    public void Dispose() => Directory.Delete(Path, recursive: true);
}
