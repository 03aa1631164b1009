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
}
