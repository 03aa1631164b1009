using SolarCsi.Cli;

try
{
    return args switch
    {
        ["demo", .. var rest] => await Demo.RunAsync(rest),
        ["cluster", .. var rest] => await ClusterCommand.RunAsync(new CliArgs(rest)),
        ["bench-nbd", .. var rest] => await NbdBench.RunAsync(rest),
        ["bench-overhead", .. var rest] => await OverheadBench.RunAsync(rest),
        ["bench-lifecycle", .. var rest] => await LifecycleBench.RunAsync(rest),
        ["bench-footprint", .. var rest] => await FootprintBench.RunAsync(rest),
        ["bench-conformance", .. var rest] => await ConformanceBench.RunAsync(rest),
        ["bench-snapshot", .. var rest] => await SnapshotBench.RunAsync(rest),
        ["bench-nbd-scale", .. var rest] => await NbdScaleBench.RunAsync(rest),
        ["volumes", .. var rest] => await VolumesCommand.RunAsync(new CliArgs(rest)),
        ["node-state", .. var rest] => await NodeStateCommand.ShowAsync(new CliArgs(rest)),
        ["cleanup", .. var rest] => await NodeStateCommand.CleanUpAsync(new CliArgs(rest)),
        ["call", .. var rest] => await CallCommand.RunAsync(new CliArgs(rest)),
        ["certs", .. var rest] => CertsCommand.Run(rest),
        _ => Usage(),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"solar: {e.Message}");
    return 2;
}
catch (Grpc.Core.RpcException e)
{
    Console.Error.WriteLine($"solar: {e.StatusCode}: {e.Status.Detail}");
    return 1;
}

static int Usage()
{
    Console.Error.WriteLine("""
        usage: solar demo [--keep]
          demo   start a controller and two node plugins on this machine (unix sockets, file pool under a
                 temporary state directory) and walk volumes through their whole life; --keep leaves the
                 directory with the plugins' logs for inspection
        usage: solar cluster [--dir DIR] [--nodes N] [--pools-config FILE]
          cluster  the same deployment in the foreground until SIGINT/SIGTERM, printing its sockets
        usage: solar bench-nbd [--out FILE] [--seconds N] [--repeats N]
          bench-nbd  fio through a driver-attached NBD volume against a local loop device (see bench/)
        usage: solar bench-overhead|bench-lifecycle|bench-footprint|bench-conformance|bench-snapshot|bench-nbd-scale [--out FILE] [flags in bench/README.md]
          bench-*    the driver's overhead over the raw OS steps, volume lifecycle throughput, plugin start-up and
                     memory, the wall time of a conformance-like call sequence, how long a snapshot holds an application,
                     hundreds of NBD volumes on one storage host
                     (bench/run-all.sh runs them all)

        operator commands (--output json for scripts, a table by default):
        usage: solar volumes --controller ENDPOINT
          volumes     every volume, its media and size, the nodes it is published to, and its condition
        usage: solar node-state [--state-dir DIR]
          node-state  on a node: the journal next to what the kernel reports (loop devices, mounts), and every
                      disagreement (default state dir /var/lib/solar-csi); works while the plugin is down
        usage: solar cleanup [--state-dir DIR] [--apply]
          cleanup     residual mounts and loop devices no journal entry explains: listed (dry run) unless --apply
        usage: solar call --endpoint ENDPOINT METHOD ['{json request}'] [--timeout-seconds N]
          call        any CSI RPC by hand, e.g. solar call --endpoint unix:///csi/csi.sock NodeGetInfo
        usage: solar certs ca --dir DIR | solar certs token --out FILE | solar certs issue --ca DIR --out DIR (--controller | --node NODE_ID) [--days N]
          certs       the control plane's CA (Secret solar-ca) and bootstrap token (Secret solar-bootstrap-token); certificates by hand
        """);
    return 2;
}
