using k8s.Models;
using SolarCsi.Controller;
using SolarCsi.Core.Hosting;
using SolarCsi.Node;
using SolarCsi.Node.Staging;
using static SolarCsi.Tests.Deploy.Workloads;

namespace SolarCsi.Tests.Deploy;

/// <summary>The controller and node pods agree with the binaries and with each other: names, sockets, flags, ports.</summary>
public sealed class DriverWiringTests
{
    private static IReadOnlyList<object> All => Manifests.Objects(Manifests.Top);
    private static Workload Controller => Workloads.All(All).Single(w => w is { Kind: "Deployment", Name: "solar-controller" });
    private static Workload Node => Workloads.All(All).Single(w => w is { Kind: "DaemonSet", Name: "solar-node" });
    private static V1Container Ours(Workload w) => w.Spec.Containers.Single(IsOurs);

    [SkippableFact]
    public void TheDriverNameIsTheSameEverywhere()
    {
        var name = PluginIdentity.DefaultDriverName;
        Assert.Equal(name, Assert.Single(Manifests.Of<V1CSIDriver>(Manifests.Top)).Metadata.Name);
        Assert.All(Manifests.Of<V1StorageClass>(Manifests.Top), sc => Assert.Equal(name, sc.Provisioner));
        Assert.All(Manifests.Of<VolumeSnapshotClass>(Manifests.Top), vsc => Assert.Equal(name, vsc.Driver));
        foreach (var w in new[] { Controller, Node })
            Assert.Equal(name, Flag(Ours(w).Args, "driver-name") ?? name);
        // kubelet finds the plugin by the registration path, which by convention names the driver.
        var registrar = Container(Node.Spec, "node-driver-registrar");
        Assert.Equal($"/var/lib/kubelet/plugins/{name}/csi.sock", Flag(registrar.Args, "kubelet-registration-path"));
        Assert.Equal($"/var/lib/kubelet/plugins/{name}", Volume(Node.Spec, "plugin-dir").HostPath.Path);
    }

    [SkippableFact]
    public void EverySidecarDialsTheSocketOurPluginListensOn()
    {
        foreach (var w in new[] { Controller, Node })
        {
            var ours = Ours(w);
            var endpoint = Flag(ours.Args, "endpoint") ?? throw new InvalidDataException($"{w.Name}: no --endpoint");
            Assert.StartsWith("unix:///", endpoint);
            var socket = Locate(ours, UnixPath(endpoint));
            var sidecars = Containers(w.Spec).Where(c => !IsOurs(c)).ToArray();
            Assert.NotEmpty(sidecars);
            foreach (var sidecar in sidecars)
            {
                var address = Flag(sidecar.Args, "csi-address") ?? throw new InvalidDataException($"{sidecar.Name}: no --csi-address");
                Assert.Equal(socket, Locate(sidecar, UnixPath(address)));
            }
        }
        // kubelet dials the node socket on the host: the plugin dir's host path plus the socket's place in it.
        var nodeSocket = Locate(Ours(Node), UnixPath(Flag(Ours(Node).Args, "endpoint")!));
        var hostSocket = Path.Combine(Volume(Node.Spec, nodeSocket.Volume).HostPath.Path, nodeSocket.RelativePath);
        var registrar = Container(Node.Spec, "node-driver-registrar");
        Assert.Equal(hostSocket, Flag(registrar.Args, "kubelet-registration-path"));
        // The registrar announces itself in kubelet's registration directory (mounted where it looks: /registration).
        var registration = Locate(registrar, "/registration/x");
        Assert.Equal("/var/lib/kubelet/plugins_registry", Volume(Node.Spec, registration.Volume).HostPath.Path);
        Assert.NotNull(Volume(Controller.Spec, Locate(Ours(Controller), UnixPath(Flag(Ours(Controller).Args, "endpoint")!)).Volume).EmptyDir);
        // The controller's name claims live on a volume of their own (outliving a container restart), not in the image's layer.
        Assert.NotNull(Volume(Controller.Spec, Locate(Ours(Controller), Flag(Ours(Controller).Args, "state-dir") + "/claims/x.json").Volume).EmptyDir);
    }

    [SkippableFact]
    public void EveryFlagPassedToOurBinariesExistsAndTheWholeCommandLineParses()
    {
        var controller = Ours(Controller);
        Assert.Equal([ControllerBinary], controller.Command);
        Assert.All(FlagNames(controller.Args), f => Assert.True(ControllerOptions.Flags.ContainsKey(f), $"solar-controller has no --{f}"));
        using var secrets = new TempDir();
        var controllerArgs = controller.Args.Select(a => Expand(a, Workloads.Environment(Controller, controller, All)))
            .Select(a => WithMountedSecret(Controller, controller, a, secrets)).Select(a => a.StartsWith("--state-dir=", StringComparison.Ordinal)
                ? "--state-dir=" + Path.Combine(secrets.Path, "controller-state") : a).ToArray();
        var controllerOptions = ControllerCertificate.WithCertificates(ControllerOptions.Parse(new CommandLine(controllerArgs, ControllerOptions.Flags)));
        Assert.NotNull(controllerOptions.Tls);
        Assert.NotNull(controllerOptions.Issuer);

        var node = Ours(Node);
        Assert.Equal([NodeBinary], node.Command);
        Assert.All(FlagNames(node.Args), f => Assert.True(NodeOptions.Flags.ContainsKey(f), $"solar-node has no --{f}"));
        using var dir = new TempDir();
        var nodeArgs = node.Args.Select(a => Expand(a, Workloads.Environment(Node, node, All))).Select(a => WithMountedFile(Node, node, a, dir))
            .Select(a => WithMountedSecret(Node, node, a, secrets)).ToArray();
        var nodeOptions = NodeOptions.Parse(new CommandLine(nodeArgs, NodeOptions.Flags));

        Assert.Equal(FieldSamples["spec.nodeName"], nodeOptions.NodeId);
        Assert.Equal(FieldSamples["status.podIP"], nodeOptions.AgentEndpoint.Address!.ToString());
        Assert.Equal(FieldSamples["status.podIP"], nodeOptions.NbdServer.Address);
        // The node announces itself to the registry Service, which leads to the controller's registry port.
        Assert.Equal(SampleClusterIp, nodeOptions.ControllerEndpoint!.Address!.ToString());
        var service = Manifests.Single<V1Service>(Manifests.Top, "solar-registry");
        var servicePort = Assert.Single(service.Spec.Ports);
        Assert.Equal(servicePort.Port, nodeOptions.ControllerEndpoint.Port);
        Assert.Equal(controllerOptions.RegistryEndpoint.Port, Port(controller, servicePort.TargetPort));
        Assert.All(service.Spec.Selector, kv => Assert.Equal(kv.Value, Manifests.Single<V1Deployment>(Manifests.Top, "solar-controller").Spec.Template.Metadata.Labels[kv.Key]));
        // The agent's port is declared on the container (hostNetwork: it is a host port).
        Assert.Contains(node.Ports, p => p.ContainerPort == nodeOptions.AgentEndpoint.Port);
    }

    // A flag value inside a Secret volume: what the operator puts there (docs/deploy.md) — the CA as `solar certs ca`
    // writes it for a directory, the CA's certificate or a token for a file — in a temp directory instead.
    private static string WithMountedSecret(Workload w, V1Container c, string arg, TempDir dir)
    {
        var eq = arg.IndexOf('=');
        if (eq < 0 || !arg[(eq + 1)..].StartsWith('/')) return arg;
        var path = arg[(eq + 1)..];
        var mount = (c.VolumeMounts ?? []).FirstOrDefault(m => path == m.MountPath || path.StartsWith(m.MountPath + "/", StringComparison.Ordinal));
        if (mount is null || Volume(w.Spec, mount.Name).Secret is not { } secret) return arg;
        var caDir = Path.Combine(dir.Path, "ca");
        if (!Directory.Exists(caDir)) SolarCsi.Core.Hosting.Tls.CertificateAuthority.Create(caDir, TimeSpan.FromDays(1));
        if (secret.SecretName == "solar-ca") return arg[..(eq + 1)] + (path == mount.MountPath ? caDir : Path.Combine(caDir, Path.GetFileName(path)));
        var file = Path.Combine(dir.Path, secret.SecretName + "-" + Path.GetFileName(path));
        File.WriteAllText(file, "sample-token\n");
        return arg[..(eq + 1)] + file;
    }

    // A flag value that is a file inside a ConfigMap volume: write the ConfigMap's key to a temp file and point there,
    // as the mount would.
    private static string WithMountedFile(Workload w, V1Container c, string arg, TempDir dir)
    {
        var eq = arg.IndexOf('=');
        if (eq < 0 || !arg[(eq + 1)..].StartsWith('/')) return arg;
        var path = arg[(eq + 1)..];
        if (!(c.VolumeMounts ?? []).Any(m => path.StartsWith(m.MountPath + "/", StringComparison.Ordinal))) return arg;
        var (volume, relative) = Locate(c, path);
        if (Volume(w.Spec, volume).ConfigMap is not { } source) return arg;
        var configMap = Manifests.Single<V1ConfigMap>(Manifests.Top, source.Name);
        Assert.True(configMap.Data.ContainsKey(relative), $"{path}: ConfigMap {source.Name} has no key {relative}");
        var file = Path.Combine(dir.Path, relative);
        File.WriteAllText(file, configMap.Data[relative]);
        return arg[..(eq + 1)] + file;
    }

    [SkippableFact]
    public void OnTheHostNetworkTheNodesPortsAreOurOwn()
    {
        // Other drivers' sidecars on the same host take livenessprobe's 9808 and the registrar's 9809 by convention.
        var node = Containers(Node.Spec).ToList();
        var ports = node.SelectMany(c => c.Ports ?? []).Select(p => p.ContainerPort).ToList();
        Assert.Equal(ports.Count, ports.Distinct().Count());
        Assert.DoesNotContain(9808, ports);
        Assert.DoesNotContain(9809, ports);
        foreach (var c in node.Where(c => Sidecars.HealthEndpointFlag.ContainsKey(c.Name)))
            Assert.Contains(ListenPort(Flag(c.Args, Sidecars.HealthEndpointFlag[c.Name])!), ports);
    }

    [SkippableFact]
    public void TheControllerRunsOnceWithTheProvisionerSetUpForTopologyAndCapacity()
    {
        var deployment = Manifests.Single<V1Deployment>(Manifests.Top, "solar-controller");
        // One controller: agents announce to one of them, and a second would know only its share of the nodes.
        Assert.Equal(1, deployment.Spec.Replicas);
        Assert.Equal("Recreate", deployment.Spec.Strategy.Type);
        var provisioner = Container(Controller.Spec, "csi-provisioner");
        foreach (var flag in new[] { "feature-gates=Topology=true", "enable-capacity", "capacity-ownerref-level=2", "leader-election", "extra-create-metadata", "default-fstype=ext4", "strict-topology" })
            Assert.Contains($"--{flag}", provisioner.Args);
        // Capacity tracking names and owns CSIStorageCapacity objects through these.
        Assert.Equal("metadata.namespace", provisioner.Env.Single(e => e.Name == "NAMESPACE").ValueFrom.FieldRef.FieldPath);
        Assert.Equal("metadata.name", provisioner.Env.Single(e => e.Name == "POD_NAME").ValueFrom.FieldRef.FieldPath);
        foreach (var sidecar in new[] { "csi-provisioner", "csi-attacher", "csi-resizer", "csi-snapshotter" })
            Assert.Contains("--leader-election", Container(Controller.Spec, sidecar).Args);
    }

    [SkippableFact]
    public void TheNodePluginIsPrivilegedOnTheHostNetworkWithItsHostPaths()
    {
        var node = Ours(Node);
        var options = NodeOptions.Parse(new CommandLine(
            node.Args.Where(a => !a.StartsWith("--pools-config", StringComparison.Ordinal))
                .Select(a => Expand(a, Workloads.Environment(Node, node, All))), NodeOptions.Flags));
        Assert.True(node.SecurityContext.Privileged);
        Assert.True(Node.Spec.HostNetwork);
        Assert.Equal("ClusterFirstWithHostNet", Node.Spec.DnsPolicy);
        Assert.NotEqual(false, Node.Spec.EnableServiceLinks);

        // Kubelet's directory and the state directory, each at the same path as on the host, Bidirectional.
        foreach (var path in new[] { "/var/lib/kubelet", options.StateDir })
        {
            var mount = node.VolumeMounts.SingleOrDefault(m => m.MountPath == path) ?? throw new InvalidDataException($"{path} is not mounted");
            Assert.Equal("Bidirectional", mount.MountPropagation);
            Assert.Equal(path, Volume(Node.Spec, mount.Name).HostPath.Path);
        }
        // Every staging and target path kubelet may pass is inside the propagated kubelet mount.
        Assert.All(options.AllowedRoots, root => Assert.Equal("kubelet-dir", Locate(node, root + "/x").Volume));
        foreach (var (path, readOnly) in new[] { ("/dev", false), ("/sys", false), ("/lib/modules", true) })
        {
            var mount = node.VolumeMounts.Single(m => m.MountPath == path);
            Assert.Equal(path, Volume(Node.Spec, mount.Name).HostPath.Path);
            Assert.Equal(readOnly, mount.ReadOnlyProperty ?? false);
        }
    }

    [SkippableFact]
    public void ThePreStopHookWaitsOnTheSameStateDirAndFitsInTheGracePeriod()
    {
        var node = Ours(Node);
        var command = node.Lifecycle.PreStop.Exec.Command;
        Assert.Equal([NodeBinary, PreStopHook.Command], command.Take(2));
        var hook = new CommandLine(command.Skip(2), PreStopHook.Flags);
        Assert.Equal(Flag(node.Args, "state-dir"), hook.Get("state-dir"));
        var timeout = hook.GetInt("timeout-seconds", -1);
        Assert.InRange(timeout, 60, int.MaxValue);
        // The hook, then SIGTERM and a clean shutdown, all inside the grace period.
        Assert.InRange(Node.Spec.TerminationGracePeriodSeconds ?? 30, timeout + 15, long.MaxValue);
        // With the data plane in its own pod, the DaemonSet controller rolls the plugin out, and the hook lets an
        // old pod go once nothing is being unstaged.
        Assert.Equal("RollingUpdate", Manifests.Single<V1DaemonSet>(Manifests.Top, "solar-node").Spec.UpdateStrategy.Type);
        Assert.InRange(hook.GetInt("idle-seconds", 0), 10, timeout);
    }

    private static Workload DataPlane => Workloads.All(All).Single(w => w is { Kind: "DaemonSet", Name: "solar-dataplane" });

    /// <summary>
    /// The node plugin and its data-plane host meet on one socket and one state dir, see each other's processes, and
    /// share the helpers' mounts both ways; the data plane is never restarted by the DaemonSet controller.
    /// </summary>
    [SkippableFact]
    public void TheNodePluginAndItsDataPlaneHostShareTheSocketStateDirAndPids()
    {
        var node = Ours(Node);
        var dataPlane = Ours(DataPlane);
        Assert.Equal([NodeBinary], dataPlane.Command);
        Assert.Equal(SolarCsi.Node.DataPlane.DataPlaneHost.Command, dataPlane.Args[0]);
        var flags = new CommandLine(dataPlane.Args.Skip(1), SolarCsi.Node.DataPlane.DataPlaneHost.Flags);
        Assert.Equal(Flag(node.Args, "dataplane-endpoint"), flags.Get("endpoint"));
        Assert.Equal(Flag(node.Args, "state-dir"), flags.Get("state-dir"));
        var socket = UnixPath(flags.Get("endpoint")!);
        Assert.StartsWith(flags.Get("state-dir") + "/", socket);
        foreach (var (w, c) in new[] { (Node, node), (DataPlane, dataPlane) })
        {
            Assert.True(w.Spec.HostPID, $"{w.Name}: hostPID");
            Assert.True(w.Spec.HostNetwork, $"{w.Name}: hostNetwork");
            var state = Locate(c, flags.Get("state-dir") + "/x");
            Assert.Equal(flags.Get("state-dir"), Volume(w.Spec, state.Volume).HostPath.Path);
            Assert.Equal("Bidirectional", c.VolumeMounts.Single(m => m.Name == state.Volume).MountPropagation);
        }
        Assert.Equal("OnDelete", Manifests.Single<V1DaemonSet>(Manifests.Top, "solar-dataplane").Spec.UpdateStrategy.Type);
    }
}
