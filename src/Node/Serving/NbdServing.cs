using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Agent;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Serving;

/// <summary>
/// Remote block over NBD: one nbdkit export per volume (<see cref="NbdExports"/>), a key per admitted node, fenced by
/// revocation. The key never rides where the CO keeps it in the clear: this node reads its own, another node gets it
/// sealed to its certificate; only a control plane without TLS (one machine) hands it over as it is.
/// </summary>
public sealed class NbdServing(NbdExports exports, NodeOptions options) : IVolumeServing
{
    public void RequireEnforceable(string? volumeId, RateLimits limits) => exports.RequireEnforceable(volumeId, limits);

    public async Task<IReadOnlyDictionary<string, string>> AdmitAsync(IMediaPool pool, VolumeRecord record, PublishVolumeRequest request, bool readOnly,
        CancellationToken ct)
    {
        var node = request.Publication.NodeId;
        var consumer = ConsumerCertificate(request.ConsumerCertificate, node);
        var connection = await exports.AdmitAsync(record.VolumeId, pool.BackingPathOf(record.VolumeId), node, readOnly,
            MutableParameters.Limits(record.Parameters), ConsumerAddresses(request.ConsumerAddresses), ct);
        return node == options.NodeId ? connection.ToContext(keyStaysHere: true)
            : connection.ToContext(consumer is null ? null : SealedKey.Seal(connection.Key, consumer, record.VolumeId, node));
    }

    public async Task RevokeAsync(string volumeId, string nodeId, CancellationToken ct)
    {
        var nodes = nodeId.Length > 0 ? [nodeId] : exports.Get(volumeId)?.Identities ?? [];
        foreach (var node in nodes) await exports.RevokeAsync(volumeId, node, ct);
    }

    public bool Serves(string volumeId) => exports.Get(volumeId) is not null;

    public Task RemoveAsync(string volumeId, CancellationToken ct) => exports.RemoveAsync(volumeId, ct);

    public async Task ApplyLimitsAsync(string volumeId, RateLimits limits, CancellationToken ct)
    {
        if (exports.Get(volumeId) is not null) await exports.SetLimitsAsync(volumeId, limits, ct);
    }

    public string? ProblemOf(VolumeRecord record) =>
        record.Publications.Count > 0 && !exports.IsRunning(record.VolumeId) ? "the NBD export is not running on the storage host" : null;

    public string? WhyUnfrozenSnapshotTears(VolumeRecord record) =>
        record.Publications.FirstOrDefault(p => !p.ReadOnly && !PublicationRules.IsReadOnlyMode(p.AccessMode)) is { } writer
            ? $"volume {record.VolumeId} is attached read-write on {writer.NodeId} over NBD; a copy taken now would be torn. Detach it first"
            : null;

    /// <summary>Where the consumer's NBD connections may come from, as the controller saw the node; at least one address.</summary>
    private static IReadOnlyList<string> ConsumerAddresses(IEnumerable<string> given)
    {
        var addresses = given.ToArray();
        if (addresses.Length is 0 or > 16) throw CsiErrors.InvalidArgument("consumer_addresses must name between 1 and 16 addresses of the consumer node");
        foreach (var a in addresses)
            if (!System.Net.IPAddress.TryParse(a, out var parsed) || parsed.ToString() != a)
                throw CsiErrors.InvalidArgument($"consumer_addresses: '{a}' is not an IP address in canonical form");
        return addresses;
    }

    /// <summary>The consumer's certificate, checked to be that node's when this node can check it; null without mTLS.</summary>
    private System.Security.Cryptography.X509Certificates.X509Certificate2? ConsumerCertificate(string pem, string nodeId)
    {
        if (pem.Length == 0) return null;
        System.Security.Cryptography.X509Certificates.X509Certificate2 cert;
        try { cert = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(pem); }
        catch (System.Security.Cryptography.CryptographicException) { throw CsiErrors.InvalidArgument("consumer_certificate is not a PEM certificate"); }
        if (options.Tls is { } tls && tls.IdentityOf(cert) != ClusterTls.NodeIdentity(nodeId))
            throw CsiErrors.InvalidArgument($"consumer_certificate is not node {nodeId}'s");
        return cert;
    }
}
