using System.Net;

namespace SolarCsi.Core.Hosting;

/// <summary>
/// Which endpoints may face the network. The plugins run as root and hold every tenant's data, so nothing they serve
/// or dial across the network goes without mutual TLS; plaintext is left only to what stays on one machine (unix
/// sockets, loopback), the single-machine deployment.
/// </summary>
public static class NetworkExposure
{
    /// <summary>Whether the endpoint can be reached from (or reaches) another machine.</summary>
    public static bool FacesNetwork(GrpcEndpoint endpoint) => !endpoint.IsUnix && !IPAddress.IsLoopback(endpoint.Address!);

    /// <summary>A control-plane endpoint: on the network only with certificates.</summary>
    public static void RequireAuthenticated(GrpcEndpoint endpoint, string flag, bool hasCertificates)
    {
        if (FacesNetwork(endpoint) && !hasCertificates)
            throw new FormatException($"{flag} {endpoint} faces the network, and without --tls-dir anyone who reaches it could drive this " +
                                      "plugin's storage: give --tls-dir (see docs/deploy.md \"Control plane TLS\"), or use a unix socket or loopback address");
    }

    /// <summary>The CSI endpoint: CSI has no authentication of its own, so it is for the CO on this machine only.</summary>
    public static void RequireLocal(GrpcEndpoint endpoint, string flag)
    {
        if (FacesNetwork(endpoint))
            throw new FormatException($"{flag} {endpoint} faces the network; CSI calls carry no authentication, so the CSI endpoint must be a " +
                                      "unix socket (as kubelet and the sidecars use) or a loopback address");
    }
}
