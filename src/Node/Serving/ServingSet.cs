using SolarCsi.Node.Pools;

namespace SolarCsi.Node.Serving;

/// <summary>Which serving each medium has: the remote media registered by name (Program), every other medium local.</summary>
public sealed class ServingSet(IReadOnlyDictionary<string, IVolumeServing> remote)
{
    public IVolumeServing For(IMediaPool pool) => remote.GetValueOrDefault(pool.Media) ?? LocalServing.Instance;
}
