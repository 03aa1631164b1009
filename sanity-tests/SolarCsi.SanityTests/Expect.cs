using Grpc.Core;

namespace SolarCsi.SanityTests;

internal static class Expect
{
    /// <summary>
    /// The call fails with <paramref name="code"/>. ABORTED is repeated, as a CO would, unless it is the code
    /// expected: the background reconciler may hold a volume for a moment.
    /// </summary>
    public static async Task<RpcException> Code(StatusCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        for (var attempt = 0; e.StatusCode == StatusCode.Aborted && code != StatusCode.Aborted && attempt < 50; attempt++)
        {
            await Task.Delay(100);
            e = await Assert.ThrowsAsync<RpcException>(call);
        }
        Assert.True(code == e.StatusCode, $"expected {code}, got {e.StatusCode}: {e.Status.Detail}");
        return e;
    }

    /// <summary>The status a call ended with, OK included, for tests that accept several outcomes.</summary>
    public static async Task<StatusCode> OutcomeAsync(Task call)
    {
        try { await call; return StatusCode.OK; }
        catch (RpcException e) { return e.StatusCode; }
    }

    /// <summary>
    /// Repeats <paramref name="write"/> until it throws an I/O error, for at most <paramref name="within"/>; true when
    /// it did. How fast a failure surfaces is for bench/, not for tests: the bound only keeps a broken run finite.
    /// </summary>
    public static async Task<bool> WritesFailWithinAsync(TimeSpan within, Func<Task> write)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < within)
        {
            try { await write(); }
            catch (IOException) { return true; }
            await Task.Delay(50);
        }
        return false;
    }
}
