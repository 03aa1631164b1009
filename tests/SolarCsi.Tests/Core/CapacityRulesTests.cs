using Csi.V1;
using Grpc.Core;
using SolarCsi.Core.Validation;

namespace SolarCsi.Tests.Core;

public sealed class CapacityRulesTests
{
    private const long MiB = CapacityRules.MiB;

    [Theory]
    [InlineData(0, 0, CapacityRules.DefaultBytes)]
    [InlineData(1, 0, MiB)]
    [InlineData(10 * MiB + 1, 0, 11 * MiB)]
    [InlineData(0, 5 * MiB, 5 * MiB)]
    [InlineData(5 * MiB, 5 * MiB, 5 * MiB)]
    [InlineData(1000, 1000, 1000)]
    public void ResolvesWithinTheRange(long required, long limit, long expected) =>
        Assert.Equal(expected, CapacityRules.Resolve(new CapacityRange { RequiredBytes = required, LimitBytes = limit }));

    [Fact]
    public void NoRangeGivesTheDefault() => Assert.Equal(CapacityRules.DefaultBytes, CapacityRules.Resolve(null));

    [Fact]
    public void SourceSizeIsTheMinimum() =>
        Assert.Equal(64 * MiB, CapacityRules.Resolve(new CapacityRange { RequiredBytes = MiB }, minimumBytes: 64 * MiB));

    [Theory]
    [InlineData(-1, 0, StatusCode.InvalidArgument)]
    [InlineData(10, 5, StatusCode.InvalidArgument)]
    [InlineData(CapacityRules.MaxBytes + 1, 0, StatusCode.OutOfRange)]
    public void RejectsImpossibleRanges(long required, long limit, StatusCode code) =>
        Assert.Equal(code, Assert.Throws<RpcException>(() => CapacityRules.Resolve(new CapacityRange { RequiredBytes = required, LimitBytes = limit })).StatusCode);

    [Fact]
    public void SourceLargerThanLimitIsOutOfRange() =>
        Assert.Equal(StatusCode.OutOfRange, Assert.Throws<RpcException>(() =>
            CapacityRules.Resolve(new CapacityRange { LimitBytes = MiB }, minimumBytes: 2 * MiB)).StatusCode);

    [Fact]
    public void SatisfiesChecksBothBounds()
    {
        Assert.True(CapacityRules.Satisfies(10, null));
        Assert.True(CapacityRules.Satisfies(10, new CapacityRange { RequiredBytes = 10, LimitBytes = 10 }));
        Assert.False(CapacityRules.Satisfies(9, new CapacityRange { RequiredBytes = 10 }));
        Assert.False(CapacityRules.Satisfies(11, new CapacityRange { LimitBytes = 10 }));
    }
}
