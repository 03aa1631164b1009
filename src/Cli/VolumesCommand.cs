using Csi.V1;
using SolarCsi.Core.Hosting;

namespace SolarCsi.Cli;

/// <summary>`solar volumes`: every volume the controller knows, where it is attached, and whether it is healthy.</summary>
internal static class VolumesCommand
{
    public static async Task<int> RunAsync(CliArgs args)
    {
        using var channel = GrpcChannels.Create(GrpcEndpoint.Parse(args.Require("--controller")));
        var controller = new Csi.V1.Controller.ControllerClient(channel);
        var rows = new List<VolumeRow>();
        var token = "";
        do
        {
            var page = await controller.ListVolumesAsync(new ListVolumesRequest { MaxEntries = 100, StartingToken = token }, deadline: DateTime.UtcNow.AddSeconds(60));
            rows.AddRange(page.Entries.Select(e => new VolumeRow(
                e.Volume.VolumeId, e.Volume.CapacityBytes, e.Volume.VolumeContext.GetValueOrDefault(Core.Validation.VolumeContextKeys.Media, ""),
                e.Status?.PublishedNodeIds.ToArray() ?? [], e.Status?.VolumeCondition is { Abnormal: true } c ? c.Message : "")));
            token = page.NextToken;
        } while (token.Length > 0);

        if (args.Json)
        {
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(rows.ToArray(), CliJson.Default.VolumeRowArray));
            return 0;
        }
        Table.Print(["VOLUME", "MEDIA", "SIZE", "ATTACHED TO", "CONDITION"],
            rows.Select(r => new[] { r.VolumeId, r.Media, $"{r.CapacityBytes >> 20} MiB", string.Join(",", r.PublishedNodes), r.Problem.Length > 0 ? r.Problem : "healthy" }));
        return 0;
    }
}

internal sealed record VolumeRow(string VolumeId, long CapacityBytes, string Media, string[] PublishedNodes, string Problem);
