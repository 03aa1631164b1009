using SolarCsi.Cli;

return args switch
{
    ["demo", .. var rest] => await Demo.RunAsync(rest),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: solar demo [--keep]
          demo   start a controller and two node plugins on this machine (unix sockets, file pool under a
                 temporary state directory) and walk one volume through its whole life; --keep leaves the
                 directory with the plugins' logs for inspection
        """);
    return 2;
}
