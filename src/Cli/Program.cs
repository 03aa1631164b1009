using SolarCsi.Cli;

return args switch
{
    ["demo", .. var rest] => await Demo.RunAsync(rest),
    ["cluster", .. var rest] => await ClusterCommand.RunAsync(rest),
    ["bench-nbd", .. var rest] => await NbdBench.RunAsync(rest),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: solar demo [--keep]
          demo   start a controller and two node plugins on this machine (unix sockets, file pool under a
                 temporary state directory) and walk one volume through its whole life; --keep leaves the
                 directory with the plugins' logs for inspection
        usage: solar cluster [--dir DIR] [--nodes N] [--pools-config FILE]
          cluster  the same deployment in the foreground until SIGINT/SIGTERM, printing its sockets
        usage: solar bench-nbd [--out FILE] [--seconds N]
          bench-nbd  fio through a driver-attached NBD volume against a local loop device (see bench/)
        """);
    return 2;
}
