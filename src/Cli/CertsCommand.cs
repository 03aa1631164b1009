using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Core.Ids;

namespace SolarCsi.Cli;

/// <summary>
/// `solar certs`: the cluster CA and the certificates of the controller and each node, as directories laid out like
/// Kubernetes TLS Secrets (`kubectl create secret generic NAME --from-file=DIR` makes one of each).
/// </summary>
internal static class CertsCommand
{
    public static int Run(string[] args)
    {
        var cli = new CliArgs(args);
        var days = int.TryParse(cli.Value("--days"), out var d) && d > 0 ? d : 0;
        switch (args)
        {
            case ["ca", ..]:
                var dir = cli.Require("--dir");
                CertificateAuthority.Create(dir, TimeSpan.FromDays(days > 0 ? days : 3650));
                Console.WriteLine($"CA written to {dir} ({ClusterTls.CaFile}, {CertificateAuthority.CaKeyFile}); keep {CertificateAuthority.CaKeyFile} off the cluster's nodes");
                return 0;
            case ["token", ..]:
                var tokenFile = cli.Require("--out");
                if (File.Exists(tokenFile)) throw new UsageException($"{tokenFile} exists; not overwriting a bootstrap token nodes may be using");
                SolarCsi.Core.Storage.AtomicFile.WriteAsync(tokenFile, System.Text.Encoding.ASCII.GetBytes(
                    Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) + "\n"), CancellationToken.None).GetAwaiter().GetResult();
                Console.WriteLine($"bootstrap token written to {tokenFile} (0600); it buys one certificate per node id not yet joined: keep it in the solar-bootstrap-token Secret only");
                return 0;
            case ["issue", ..]:
                var ca = cli.Require("--ca");
                var output = cli.Require("--out");
                string identity;
                if (cli.Has("--controller")) identity = ClusterTls.ControllerIdentity;
                else if (cli.Value("--node") is { } node)
                    identity = StorageId.IsValidNode(node) ? ClusterTls.NodeIdentity(node) : throw new UsageException($"'{node}' is not a valid node id");
                else throw new UsageException("say whose certificate: --controller or --node NODE_ID");
                CertificateAuthority.Issue(ca, identity, output, TimeSpan.FromDays(days > 0 ? days : 365));
                Console.WriteLine($"{identity}: {ClusterTls.CaFile}, {ClusterTls.CertFile}, {ClusterTls.KeyFile} written to {output}");
                return 0;
            default:
                throw new UsageException("solar certs ca --dir DIR | solar certs token --out FILE | solar certs issue --ca DIR --out DIR (--controller | --node NODE_ID) [--days N]");
        }
    }
}
