using Microsoft.Extensions.Logging;
using SolarCsi.Core.Errors;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Staging;

/// <summary>
/// fsfreeze of the filesystems this node has staged, for snapshots and clones (the pools' <c>Quiesce</c>) and for a
/// caller's freeze lease. It needs only the journal and the kernel's view, not the pools — so the pools can be given
/// it at construction, with no late-bound reference to the staging code that needs the pools.
/// </summary>
public sealed class StagedFilesystemFreezer(NodeJournal journal, IMounter mounter, IProcessRunner runner, ILogger<StagedFilesystemFreezer> logger)
{
    /// <summary>
    /// Holds writes to a staged filesystem while a snapshot or clone cuts its point in time (fsfreeze), so the copy is
    /// consistent. A raw block volume in use cannot be frozen: copying it would tear it, so that is refused. A volume
    /// not staged here needs nothing: null.
    /// </summary>
    public async Task<IAsyncDisposable?> QuiesceAsync(string volumeId, CancellationToken ct)
    {
        var entry = journal.Get(volumeId);
        if (entry is { Block: true, Device: not null })
            throw CsiErrors.FailedPrecondition($"volume {volumeId} is attached as a raw block device; a copy taken now would be torn. Detach it first");
        if (entry is not { Phase: StagePhase.Staged, Block: false, Device: { } device }) return null;
        if (!(await mounter.ListAsync(ct)).Holds(entry.StagingPath, device)) return null;
        // Nested holds (a group snapshot's freeze, then the member's own snapshot on the same node) share one
        // fsfreeze: a second FIFREEZE would fail with EBUSY, and the first thaw must not release the other.
        await _freezes.WaitAsync(ct);
        try
        {
            var holds = _frozen.GetValueOrDefault(entry.StagingPath);
            if (holds == 0) await runner.RunAsync("fsfreeze", ["--freeze", entry.StagingPath], ct, TimeSpan.FromSeconds(30));
            _frozen[entry.StagingPath] = holds + 1;
        }
        finally
        {
            _freezes.Release();
        }
        return new Thaw(this, entry.StagingPath);
    }

    private readonly SemaphoreSlim _freezes = new(1, 1);
    private readonly Dictionary<string, int> _frozen = new(StringComparer.Ordinal);

    private async Task ReleaseFreezeAsync(string path)
    {
        // A frozen filesystem blocks every writer on the node; thaw even if the caller was cancelled.
        await _freezes.WaitAsync(CancellationToken.None);
        try
        {
            var holds = _frozen.GetValueOrDefault(path) - 1;
            if (holds > 0) { _frozen[path] = holds; return; }
            _frozen.Remove(path);
            await runner.RunAsync("fsfreeze", ["--unfreeze", path], CancellationToken.None, TimeSpan.FromSeconds(30));
        }
        catch (Exception e)
        {
            logger.LogError(e, "could not thaw {Path}", path);
        }
        finally
        {
            _freezes.Release();
        }
    }

    /// <summary>
    /// A crash while a snapshot held a filesystem frozen would leave every writer on it blocked forever: at start-up
    /// every staged filesystem is thawed (thawing one that is not frozen is a harmless error).
    /// </summary>
    public async Task ThawAllAsync(CancellationToken ct)
    {
        foreach (var entry in journal.All().Where(e => e is { Block: false, Device: not null }))
            if ((await mounter.ListAsync(ct)).Holds(entry.StagingPath, entry.Device!))
                await runner.RunAsync("fsfreeze", ["--unfreeze", entry.StagingPath], ct, TimeSpan.FromSeconds(30), okExitCodes: [0, 1]);
    }

    private sealed class Thaw(StagedFilesystemFreezer freezer, string path) : IAsyncDisposable
    {
        private int _done;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) await freezer.ReleaseFreezeAsync(path);
        }
    }
}
