namespace SolarCsi.Tests.Vm;

/// <summary>A command's outcome in the guest. Exit code 124 (or 137) means the guest-side timeout stopped it.</summary>
public sealed record GuestResult(int ExitCode, string StandardOutput, string StandardError)
{
    public GuestResult EnsureSuccess(string what) =>
        ExitCode == 0 ? this : throw new InvalidOperationException($"{what} failed in the guest (exit {ExitCode}): {StandardError.Trim()} {StandardOutput.Trim()}");
}
