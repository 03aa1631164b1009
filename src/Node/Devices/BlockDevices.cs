using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Devices;

/// <summary>Reads what the kernel and blkid say about a block device.</summary>
public sealed class BlockDevices(IProcessRunner runner, string sysBlock = "/sys/class/block")
{
    /// <summary>Size in bytes from sysfs (512-byte sectors regardless of the device's block size).</summary>
    public long SizeOf(string device)
    {
        var sizeFile = Path.Combine(sysBlock, DeviceNames.KernelName(device), "size");
        return File.Exists(sizeFile) ? long.Parse(File.ReadAllText(sizeFile).Trim()) * 512 : 0;
    }

    /// <summary>Signatures found by a low-level probe; empty when the device is blank.</summary>
    public async Task<IReadOnlyDictionary<string, string>> ProbeAsync(string device, CancellationToken ct)
    {
        // blkid exits 2 when it finds nothing: that, and only that, is "blank".
        var result = await runner.RunAsync("blkid", ["--probe", "--output", "export", "--", device], ct, okExitCodes: [0, 2]);
        return result.ExitCode == 2 ? new Dictionary<string, string>() : BlkidParser.ParseExport(result.StandardOutput);
    }
}
