using Grpc.Core;

namespace SolarCsi.SanityTests;

internal static class Expect
{
    public static async Task<RpcException> Code(StatusCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(code == e.StatusCode, $"expected {code}, got {e.StatusCode}: {e.Status.Detail}");
        return e;
    }
}
