using System.Security.Cryptography;

namespace SolarCsi.SanityTests;

/// <summary>
/// A pod fills its volume to the last block. The application sees ENOSPC, but the driver must still take the
/// volume down and bring it back with everything written before intact, and the space must come back on delete.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DiskFullTests(ClusterFixture fx)
{
    [Theory]
    [InlineData("file", "ext4")]
    [InlineData("file", "xfs")]
    [InlineData("nbd", "ext4")]
    public async Task AFullVolumeUnstagesAndComesBackWithItsData(string media, string fsType)
    {
        var capability = ClusterFixture.Mount(fsType);
        var volume = await fx.CreateAsync(ClusterFixture.NewVolumeOf(media, 320 << 20, capability));
        var steps = new NodeSteps(fx, volume, capability);
        var payload = RandomNumberGenerator.GetBytes(4 << 20);
        try
        {
            if (media == "nbd") await steps.ControllerPublishAsync();
            await steps.AttachAsync();
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "before.bin"), payload);

            var filled = await FillAsync(Path.Combine(steps.Target, "filler.bin"));
            Assert.True(filled > 200 << 20, $"only {filled} bytes fitted before ENOSPC");
            // Full means full: even a small new file is refused.
            await Assert.ThrowsAnyAsync<IOException>(() => File.WriteAllBytesAsync(Path.Combine(steps.Target, "more.bin"), new byte[1 << 20]));

            await steps.UnpublishAsync();
            await steps.UnstageAsync();
            await steps.AttachAsync();
            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(steps.Target, "before.bin"))));
            Assert.Equal(filled, new FileInfo(Path.Combine(steps.Target, "filler.bin")).Length);
            // Deleting frees the volume's space for the application again.
            File.Delete(Path.Combine(steps.Target, "filler.bin"));
            await File.WriteAllBytesAsync(Path.Combine(steps.Target, "more.bin"), new byte[16 << 20]);
        }
        finally
        {
            await steps.DetachQuietlyAsync();
            await fx.DeleteAsync(volume.VolumeId);
        }
        var left = await fx.Cluster.FindLeftoversAsync();
        Assert.True(left.IsEmpty, left.ToString());
    }

    /// <summary>Writes until the filesystem says ENOSPC, syncs what fitted, and returns how much that was.</summary>
    private static async Task<long> FillAsync(string path)
    {
        var block = RandomNumberGenerator.GetBytes(1 << 20);
        await using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.None);
        long written = 0;
        try
        {
            while (true)
            {
                stream.Write(block);
                written += block.Length;
            }
        }
        catch (IOException)
        {
        }
        // A partially written last block leaves the stream's position past what landed; trust the file system.
        stream.Flush(flushToDisk: true);
        return new FileInfo(path).Length;
    }
}
