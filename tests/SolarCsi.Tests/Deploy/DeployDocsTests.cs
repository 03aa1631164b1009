using System.Text.RegularExpressions;

namespace SolarCsi.Tests.Deploy;

/// <summary>docs/deploy.md states what the tests hold: the capability table, the sidecar versions, the minimum Kubernetes.</summary>
public sealed partial class DeployDocsTests
{
    private static readonly string Docs = File.ReadAllText(Path.Combine(Manifests.RepoRoot, "docs", "deploy.md")).Replace("\r\n", "\n");

    [Fact]
    public void TheCapabilityTableInTheDocsIsTheTestsTable()
    {
        var begin = Docs.IndexOf(CapabilityTable.BeginMarker, StringComparison.Ordinal);
        var end = Docs.IndexOf(CapabilityTable.EndMarker, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, "docs/deploy.md has no capability table between the markers");
        var table = Docs[(begin + CapabilityTable.BeginMarker.Length)..end].Trim();
        Assert.True(table == CapabilityTable.Markdown(), "docs/deploy.md's capability table differs from CapabilityTable; it should read:\n" + CapabilityTable.Markdown());
    }

    [Fact]
    public void TheDocsNameEveryPinnedSidecarImageAndTheMinimumKubernetes()
    {
        foreach (var sidecar in Sidecars.All)
            Assert.Contains($"`{sidecar.PinnedImage}`", Docs);
        Assert.Contains($"Kubernetes {CapabilityTable.InstallMinimum} or newer", Docs);
        foreach (var component in Manifests.AllComponents)
            Assert.Contains($"components/{component}", Docs);
    }

    /// <summary>The docs' example overlays: the yaml blocks that start with "# my-cluster/kustomization.yaml".</summary>
    public static TheoryData<int> Overlays => new(Enumerable.Range(0, OverlayBlock().Matches(Docs).Count));

    [Fact]
    public void TheDocsHaveTheirExampleOverlays() => Assert.InRange(OverlayBlock().Matches(Docs).Count, 3, 10);

    [SkippableTheory]
    [MemberData(nameof(Overlays))]
    public void EachExampleOverlayInTheDocsRendersAndParses(int index)
    {
        Manifests.RequireKubectl();
        var block = OverlayBlock().Matches(Docs)[index].Groups[1].Value;
        // Lines are indented as the surrounding list item; the overlay sits beside deploy/ as in the docs.
        var indent = block.Split('\n')[0].Length - block.Split('\n')[0].TrimStart().Length;
        var yaml = string.Join('\n', block.Split('\n').Select(l => l.Length >= indent ? l[indent..] : l.TrimStart()));
        using var dir = new TempDir();
        var overlay = Path.Combine(dir.Path, "my-cluster");
        Directory.CreateDirectory(overlay);
        var deploy = Path.GetRelativePath(overlay, Manifests.DeployPath("."));
        File.WriteAllText(Path.Combine(overlay, "kustomization.yaml"), yaml.Replace("../deploy", deploy, StringComparison.Ordinal));
        var objects = StrictYaml.Parse(Manifests.Kubectl("kustomize", overlay));
        Assert.True(objects.Count >= Manifests.Objects(Manifests.Top).Count, $"overlay {index} renders less than deploy/");
    }

    [GeneratedRegex(@"```yaml\n([ ]*# my-cluster/kustomization\.yaml\n.*?)\n[ ]*```", RegexOptions.Singleline)]
    private static partial Regex OverlayBlock();
}
