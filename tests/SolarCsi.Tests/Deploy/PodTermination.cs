using k8s.Models;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// When kubelet signals and stops each container of a terminating pod, as kubernetes/kubernetes
/// pkg/kubelet/kuberuntime does it since native sidecars (1.29): killContainersWithSyncResult stops every running
/// container at once; killContainer runs the container's preStop hook (out of the grace period), then — for a
/// restartable init container only — waits for its turn (kuberuntime_termination_order.go: until every regular
/// container and every sidecar declared after it has exited, at most the remaining grace), then StopContainer
/// sends SIGTERM and SIGKILL when the rest of the grace (at least 2 s) runs out. Completed init containers are not
/// running and take no part. A timeline in seconds from the start of the termination.
/// </summary>
internal static class PodTermination
{
    public sealed record Stop(string Container, double Signalled, double Exited);

    private const double MinimumGrace = 2; // minimumGracePeriodInSeconds

    /// <param name="preStop">how long each container's preStop hook would run (containers without one take 0)</param>
    /// <param name="shutdown">how long each container takes to exit after SIGTERM</param>
    public static IReadOnlyDictionary<string, Stop> Timeline(V1PodSpec spec, Func<V1Container, double> preStop, Func<V1Container, double> shutdown)
    {
        double grace = spec.TerminationGracePeriodSeconds ?? 30;
        var stops = new Dictionary<string, Stop>(StringComparer.Ordinal);

        Stop StopAt(V1Container c, double signalled) =>
            new(c.Name, signalled, signalled + Math.Min(shutdown(c), Math.Max(grace - signalled, MinimumGrace)));

        double HookEnds(V1Container c) => c.Lifecycle?.PreStop is null ? 0 : Math.Min(preStop(c), grace);

        foreach (var c in spec.Containers) stops[c.Name] = StopAt(c, HookEnds(c));
        var mainExited = spec.Containers.Select(c => stops[c.Name].Exited).DefaultIfEmpty(0).Max();

        // Sidecars from the last declared to the first: each waits for the main containers and the sidecars after it.
        var laterSidecarExited = 0.0;
        foreach (var c in Enumerable.Reverse(spec.InitContainers ?? []).Where(c => c.RestartPolicy == "Always"))
        {
            var turn = Math.Max(HookEnds(c), Math.Max(mainExited, laterSidecarExited));
            stops[c.Name] = StopAt(c, Math.Min(turn, grace));
            laterSidecarExited = stops[c.Name].Exited;
        }
        return stops;
    }
}
