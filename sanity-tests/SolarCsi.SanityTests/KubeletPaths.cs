namespace SolarCsi.SanityTests;

/// <summary>Fresh staging and target paths shaped like kubelet's, under a cluster's stand-in kubelet directory.</summary>
internal static class KubeletPaths
{
    public static string NewStaging(string kubeletDir) =>
        Path.Combine(kubeletDir, "plugins", "kubernetes.io", "csi", "staging", Guid.NewGuid().ToString("N"));

    public static string NewTarget(string kubeletDir) =>
        Path.Combine(kubeletDir, "pods", Guid.NewGuid().ToString("N"), "volumes", "kubernetes.io~csi", "pv", "mount");
}
