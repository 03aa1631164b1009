using Polly;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Mounts;

public sealed class LinuxMounter(IProcessRunner runner, string mountInfoPath = "/proc/self/mountinfo") : IMounter
{
    // EBUSY from umount is often a straggling reader that lets go within a second; after that it is real.
    private static readonly ResiliencePipeline BusyRetry = CommandRetry.WhenStderrContains("busy", 4, TimeSpan.FromMilliseconds(200));

    public async Task<MountTable> ListAsync(CancellationToken ct) =>
        new(MountInfoParser.Parse(await File.ReadAllTextAsync(mountInfoPath, ct)));

    public Task MountAsync(string source, string target, string? fsType, IReadOnlyList<string> options, CancellationToken ct) =>
        runner.RunAsync("mount", MountArguments(source, target, fsType, options), ct);

    public Task RemountAsync(string target, IReadOnlyList<string> options, CancellationToken ct) =>
        runner.RunAsync("mount", ["-o", string.Join(',', ["remount", .. options]), "--", target], ct);

    public Task BindAsync(string source, string target, bool readOnly, CancellationToken ct) =>
        runner.RunAsync("mount", MountArguments(source, target, null, readOnly ? ["bind", "ro"] : ["bind"]), ct);

    public async Task UnmountAsync(string target, CancellationToken ct) =>
        await BusyRetry.ExecuteAsync(async token => await runner.RunAsync("umount", [target], token), ct);

    public static IReadOnlyList<string> MountArguments(string source, string target, string? fsType, IReadOnlyList<string> options)
    {
        var args = new List<string>();
        if (!string.IsNullOrEmpty(fsType)) args.AddRange(["-t", fsType]);
        if (options.Count > 0) args.AddRange(["-o", string.Join(',', options)]);
        // "--" keeps a source or target that starts with '-' from being read as an option.
        args.AddRange(["--", source, target]);
        return args;
    }
}
