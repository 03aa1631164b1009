using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using SolarCsi.Core.Hosting;

namespace SolarCsi.Cli;

/// <summary>
/// `solar call`: any CSI RPC by hand against a socket, like csc: the request as protobuf JSON (camelCase or the
/// proto names), the response printed as JSON, the gRPC status as the exit code's reason.
/// </summary>
internal static class CallCommand
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithIndentation().WithFormatDefaultValues(false));

    public static async Task<int> RunAsync(CliArgs args)
    {
        var words = args.Positional("--endpoint", "--timeout-seconds");
        if (words.Count is < 1 or > 2) throw new UsageException("usage: solar call --endpoint ENDPOINT METHOD ['{json request}']");
        var method = Find(words[0]);
        var request = Parser.Parse(words.Count == 2 ? words[1] : "{}", method.InputType);
        using var channel = GrpcChannels.Create(GrpcEndpoint.Parse(args.Require("--endpoint")));
        var call = new Method<IMessage, IMessage>(MethodType.Unary, method.Service.FullName, method.Name,
            Marshallers.Create<IMessage>(m => m.ToByteArray(), b => method.InputType.Parser.ParseFrom(b)),
            Marshallers.Create<IMessage>(m => m.ToByteArray(), b => method.OutputType.Parser.ParseFrom(b)));
        var timeout = TimeSpan.FromSeconds(int.Parse(args.Value("--timeout-seconds") ?? "120"));
        try
        {
            var response = await channel.CreateCallInvoker().AsyncUnaryCall(call, null, new CallOptions(deadline: DateTime.UtcNow + timeout), request);
            Console.WriteLine(Formatter.Format(response));
            return 0;
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"{method.Name}: {e.StatusCode}: {e.Status.Detail}");
            return 1;
        }
    }

    /// <summary>A method of the CSI Identity, Controller, Node or GroupController service, by its name.</summary>
    private static MethodDescriptor Find(string name)
    {
        var methods = Csi.V1.CsiReflection.Descriptor.Services.SelectMany(s => s.Methods).ToArray();
        return methods.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase))
               ?? throw new UsageException($"no CSI method '{name}'; known: {string.Join(", ", methods.Select(m => m.Name))}");
    }
}
