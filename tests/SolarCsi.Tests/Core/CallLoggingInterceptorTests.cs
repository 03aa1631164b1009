using Grpc.Core;
using Microsoft.Extensions.Logging;
using SolarCsi.Core.Hosting;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Core;

public sealed class CallLoggingInterceptorTests
{
    [Fact]
    public async Task ABugReachesTheCallerAsAReferenceNotItsMessage()
    {
        var log = new ListLogger();
        var interceptor = new CallLoggingInterceptor(log);
        var e = await Assert.ThrowsAsync<RpcException>(() => interceptor.UnaryServerHandler<Csi.V1.NodeStageVolumeRequest, Csi.V1.NodeStageVolumeResponse>(
            new Csi.V1.NodeStageVolumeRequest { VolumeId = "v" }, new FakeContext(),
            (_, _) => throw new InvalidOperationException("state of /var/lib/solar-csi/pools/nbd/default/keys.psk")));
        Assert.Equal(StatusCode.Internal, e.StatusCode);
        Assert.DoesNotContain("/var/lib", e.Status.Detail);
        Assert.DoesNotContain(nameof(InvalidOperationException), e.Status.Detail);
        var reference = e.Status.Detail.Split("ref ")[1][..8];
        // The operator finds the whole story under the reference the caller got.
        Assert.Contains(log.Lines, l => l.Contains(reference, StringComparison.Ordinal) && l.Contains("keys.psk", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WhatAFailedToolSaidIsKeptForTheCaller()
    {
        var interceptor = new CallLoggingInterceptor(new ListLogger());
        var e = await Assert.ThrowsAsync<RpcException>(() => interceptor.UnaryServerHandler<Csi.V1.NodeStageVolumeRequest, Csi.V1.NodeStageVolumeResponse>(
            new Csi.V1.NodeStageVolumeRequest { VolumeId = "v" }, new FakeContext(),
            (_, _) => throw new IOException("mount: wrong fs type")));
        Assert.Equal("mount: wrong fs type", e.Status.Detail);
    }

    private sealed class ListLogger : ILogger<CallLoggingInterceptor>
    {
        public List<string> Lines { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines) Lines.Add(formatter(state, exception) + " " + exception?.Message);
        }
    }

    private sealed class FakeContext : ServerCallContext
    {
        protected override string MethodCore => "/csi.v1.Node/NodeStageVolume";
        protected override string HostCore => "localhost";
        protected override string PeerCore => "unix:";
        protected override DateTime DeadlineCore => DateTime.MaxValue;
        protected override Metadata RequestHeadersCore => [];
        protected override CancellationToken CancellationTokenCore => CancellationToken.None;
        protected override Metadata ResponseTrailersCore => [];
        protected override Status StatusCore { get; set; }
        protected override WriteOptions? WriteOptionsCore { get; set; }
        protected override AuthContext AuthContextCore => new(null, []);
        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();
        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }
}
