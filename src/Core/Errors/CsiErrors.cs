using Grpc.Core;

namespace SolarCsi.Core.Errors;

/// <summary>The one place gRPC status codes are raised from, so every RPC maps failures the same way.</summary>
public static class CsiErrors
{
    public static RpcException InvalidArgument(string message) => New(StatusCode.InvalidArgument, message);
    public static RpcException NotFound(string message) => New(StatusCode.NotFound, message);
    public static RpcException AlreadyExists(string message) => New(StatusCode.AlreadyExists, message);
    public static RpcException FailedPrecondition(string message) => New(StatusCode.FailedPrecondition, message);
    public static RpcException Aborted(string message) => New(StatusCode.Aborted, message);
    public static RpcException OutOfRange(string message) => New(StatusCode.OutOfRange, message);
    public static RpcException ResourceExhausted(string message) => New(StatusCode.ResourceExhausted, message);
    public static RpcException Unavailable(string message) => New(StatusCode.Unavailable, message);
    public static RpcException Internal(string message) => New(StatusCode.Internal, message);

    private static RpcException New(StatusCode code, string message) => new(new Status(code, message));
}
