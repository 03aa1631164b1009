using SolarCsi.Cli;

return args switch
{
    ["demo", .. var rest] => await Demo.RunAsync(rest),
    ["cluster", .. var rest] => await ClusterCommand.RunAsync(rest),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: solar demo [--keep]
          demo   start a controller and two node plugins on this machine (unix sockets, file pool under a
                 temporary state directory) and walk one volume through its whole life; --keep leaves the
                 directory with the plugins' logs for inspection
        usage: solar cluster [--dir DIR] [--nodes N]
          cluster  the same deployment in the foreground until SIGINT/SIGTERM, printing its sockets
        """);
    return 2;
}
