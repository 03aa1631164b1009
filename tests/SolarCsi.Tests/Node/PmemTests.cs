using System.Globalization;
using System.Text;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Pools.Pmem;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Node;

public sealed class NdctlCommandTests
{
    [Fact]
    public void ExactCommandLines()
    {
        AssertCommand("ndctl create-namespace --mode fsdax --region region0 --size 1073741824 --name v0123456789abcdef01234567",
            NdctlCommands.CreateNamespace("region0", 1 << 30, "v0123456789abcdef01234567"));
        AssertCommand("ndctl list --namespaces --idle --region region0", NdctlCommands.ListNamespaces("region0"));
        AssertCommand("ndctl list --regions", NdctlCommands.ListRegions());
        AssertCommand("ndctl destroy-namespace --force namespace0.1", NdctlCommands.DestroyNamespace("namespace0.1"));
        AssertCommand("wipefs --all --force -- /dev/pmem0.1", NdctlCommands.WipeSignatures("/dev/pmem0.1"));
    }

    private static void AssertCommand(string expected, (string Program, IReadOnlyList<string> Arguments) actual) =>
        Assert.Equal(expected, actual.Program + " " + string.Join(' ', actual.Arguments));
}

/// <summary>Samples from ndctl's documentation and the output code in ndctl's sources, as noted on each.</summary>
public sealed class NdctlParserTests
{
    // ndctl-list(1) (ndctl v76), EXAMPLE "ndctl list --buses --namespaces": the two namespace objects, as the array
    // "ndctl list --namespaces" prints them.
    private const string ManPageNamespaces = """
        [
          {
            "dev":"namespace9.0",
            "mode":"raw",
            "size":33554432,
            "blockdev":"pmem9"
          },
          {
            "dev":"namespace0.0",
            "mode":"fsdax",
            "size":8589934592,
            "blockdev":"pmem0"
          }
        ]
        """;

    // ndctl-list(1) (ndctl v76), option --human: "# ndctl list --region=7" prints one region as a bare object.
    private const string ManPageSingleRegion = """
        {
          "dev":"region7",
          "size":67108864,
          "available_size":67108864,
          "type":"pmem",
          "iset_id":-6382611090938810793,
          "badblock_count":8
        }
        """;

    // ndctl-list(1) (ndctl v76): the same region with --human.
    private const string ManPageHumanRegion = """
        {
          "dev":"region7",
          "size":"64.00 MiB (67.11 MB)",
          "available_size":"64.00 MiB (67.11 MB)",
          "type":"pmem",
          "iset_id":"0xa76c6907811fae57",
          "badblock_count":8
        }
        """;

    // "ndctl list -R" output quoted on the nvdimm mailing list (patch "ndctl/json: display all region capabilities",
    // without the patch): the region "align" of current kernels.
    private const string MailingListRegions = """
         [
          {
            "dev":"region1",
            "size":549755813888,
            "align":16777216,
            "available_size":549755813888,
            "max_available_extent":549755813888,
            "type":"pmem",
            "iset_id":11510624209454722969,
            "persistence_domain":"memory_controller"
          }
        ]
        """;

    // In the field order of util_namespace_to_json (ndctl/json.c): a named fsdax namespace with its pfn "align", and the
    // idle seed namespace of a region as quoted on the nvdimm mailing list ("state":"disabled", size 0).
    private const string NamedAndIdleNamespaces = """
        [
          {
            "dev":"namespace0.1",
            "mode":"fsdax",
            "map":"dev",
            "size":132120576,
            "uuid":"2a5f8fe0-69e2-46bf-98bc-0f5667cd810a",
            "sector_size":512,
            "align":2097152,
            "blockdev":"pmem0.1",
            "name":"v0123456789abcdef01234567"
          },
          {
            "dev":"namespace1.0",
            "mode":"raw",
            "size":0,
            "uuid":"00000000-0000-0000-0000-000000000000",
            "sector_size":512,
            "state":"disabled"
          }
        ]
        """;

    [Fact]
    public void ParsesAnArray()
    {
        var namespaces = NdctlParser.ParseNamespaces(ManPageNamespaces);
        Assert.Equal(["namespace9.0", "namespace0.0"], namespaces.Select(n => n.Dev));
        Assert.Equal(new PmemNamespace("namespace0.0", "fsdax", 8589934592, "", "pmem0", "", 0, true), namespaces[1]);

        var region = Assert.Single(NdctlParser.ParseRegions(MailingListRegions));
        Assert.Equal(new PmemRegion("region1", 549755813888, 549755813888, 549755813888, "pmem", 16777216), region);
    }

    [Fact]
    public void ParsesASingleObject()
    {
        var region = Assert.Single(NdctlParser.ParseRegions(ManPageSingleRegion));
        Assert.Equal(new PmemRegion("region7", 67108864, 67108864, null, "pmem", null), region);
        Assert.Equal(67108864, region.LargestFreeBytes);
        var ns = Assert.Single(NdctlParser.ParseNamespaces("""{"dev":"namespace0.0","mode":"fsdax","size":8589934592,"blockdev":"pmem0"}"""));
        Assert.Equal("pmem0", ns.BlockDev);
    }

    [Fact]
    public void ParsesNothingAsNone()
    {
        Assert.Empty(NdctlParser.ParseNamespaces(""));
        Assert.Empty(NdctlParser.ParseRegions("\n"));
        Assert.Empty(NdctlParser.ParseRegions("[]"));
    }

    [Fact]
    public void ParsesNamesAlignmentAndIdleNamespaces()
    {
        var namespaces = NdctlParser.ParseNamespaces(NamedAndIdleNamespaces);
        Assert.Equal(new PmemNamespace("namespace0.1", "fsdax", 132120576, "2a5f8fe0-69e2-46bf-98bc-0f5667cd810a", "pmem0.1",
            "v0123456789abcdef01234567", 2097152, true), namespaces[0]);
        Assert.False(namespaces[1].Enabled);
        Assert.Equal(("", 0L), (namespaces[1].BlockDev, namespaces[1].SizeBytes));
    }

    [Fact]
    public void ReadsTheListsOfAPlatformObject()
    {
        // list.c prints {"regions":[...],"namespaces":[...]} when more than one kind is listed.
        const string platform = """{"regions":[{"dev":"region0","size":1073741824,"available_size":0,"type":"pmem"}],"namespaces":[{"dev":"namespace0.0","mode":"fsdax","size":1040187392,"blockdev":"pmem0"}]}""";
        Assert.Equal("region0", Assert.Single(NdctlParser.ParseRegions(platform)).Dev);
        Assert.Equal("namespace0.0", Assert.Single(NdctlParser.ParseNamespaces(platform)).Dev);
    }

    [Fact]
    public void RefusesHumanReadableSizes() => Assert.Throws<FormatException>(() => NdctlParser.ParseRegions(ManPageHumanRegion));
}

public sealed class PmemSizingTests
{
    private const long MiB = 1 << 20, GiB = 1 << 30;

    [Fact]
    public void UnitIsTheRegionAlignmentAndAtLeast16MiB()
    {
        Assert.Equal(16 * MiB, PmemSizing.UnitOf(null));
        Assert.Equal(16 * MiB, PmemSizing.UnitOf(4096));
        Assert.Equal(16 * MiB, PmemSizing.UnitOf(16 * MiB));
        Assert.Equal(96 * MiB, PmemSizing.UnitOf(96 * MiB)); // a 6-way interleave set: 16 MiB x 6
        Assert.Equal(1 * GiB, PmemSizing.UnitOf(1 * GiB));
    }

    [Theory]
    [InlineData(1L)]
    [InlineData(16L << 20)]
    [InlineData(100L << 20)]
    [InlineData(80L << 30)]
    [InlineData(3L << 40)]
    public void AskedSizeLeavesTheRequestAfterMetadata(long capacity)
    {
        foreach (var unit in new[] { 16 * MiB, 96 * MiB })
        {
            var raw = PmemSizing.RawSizeFor(capacity, unit);
            Assert.Equal(0, raw % unit);
            Assert.True(raw >= 16 * MiB);
            // The kernel's map=dev layout at 2 MiB alignment: page map and info block rounded up, one alignment of padding.
            Assert.True(FakeNdctl.UsableOf(raw, 2 * MiB) >= capacity);
            Assert.True(raw - capacity < capacity / 50 + 2 * unit + 8 * MiB, $"{raw} is wasteful for {capacity}");
        }
    }

    [Fact]
    public void MatchesTheDocumentedOverhead()
    {
        // ndctl create-namespace --size=80G gives "size":"78.75 GiB": 1/64 of the namespace holds the page map.
        var raw = PmemSizing.RawSizeFor(80 * GiB, 16 * MiB);
        Assert.True(raw / 64 * 63 >= 80 * GiB);
        Assert.True(raw < 81.5 * GiB);
    }
}

public sealed class PmemPoolTests : IDisposable
{
    private const long MiB = 1 << 20, GiB = 1 << 30;
    private readonly TempDir _dir = new();
    private readonly FakeNdctl _ndctl = new();
    private readonly ListLogger _log = new();

    public void Dispose() => _dir.Dispose();

    private async Task<PmemPool> StartedPool(string region = "region0", string? root = null)
    {
        var pool = new PmemPool("pm", region, root ?? _dir.Path, _ndctl, _log);
        await pool.InitializeAsync(CancellationToken.None);
        return pool;
    }

    private static string VolumeId(string name) => StorageId.ForVolume("pmem", "pm", "n1", name).ToString();
    private static string Ns(string id) => PoolRecords.NameOf(id);

    private static Task<VolumeRecord> Create(PmemPool pool, string id, long bytes, long limit = 0, ContentSource? source = null) =>
        pool.CreateVolumeAsync(id, "pvc", bytes, limit, new(), source, CancellationToken.None);

    private static async Task<StatusCode> Failure(Func<Task> action) => (await Assert.ThrowsAsync<RpcException>(action)).StatusCode;

    [Fact]
    public async Task CreatesAnFsdaxNamespaceThatHoldsTheRequest()
    {
        var pool = await StartedPool();
        var id = VolumeId("a");
        var record = await Create(pool, id, 1 * GiB);
        var raw = PmemSizing.RawSizeFor(1 * GiB, 16 * MiB);

        Assert.Equal([
            $"ndctl create-namespace --mode fsdax --region region0 --size {raw} --name {Ns(id)}",
            "wipefs --all --force -- /dev/pmem0.1",
        ], _ndctl.Changes);
        Assert.Equal(FakeNdctl.UsableOf(raw, 2 * MiB), record.CapacityBytes);
        Assert.True(record.CapacityBytes >= 1 * GiB);
        Assert.Equal("/dev/pmem0.1", pool.BackingPathOf(id));
        var info = pool.Describe();
        Assert.Equal((64 * GiB, 64 * GiB - raw, 64 * GiB - raw, false, true), (info.TotalBytes, info.FreeBytes, info.LargestFreeBytes, info.SupportsSnapshots, info.SupportsBlock));
        Assert.False(pool.NodeExpansionRequired);
        Assert.Equal("pmem", pool.Media);

        Assert.Equal(record.Created, (await Create(pool, id, 1 * GiB)).Created);
        Assert.Equal(2, _ndctl.Changes.Count);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "pending")));
    }

    [Fact]
    public async Task MakesTheNamespaceAgainWhenALargerAlignmentLeftItShort()
    {
        _ndctl.FsdaxAlign = 16 * MiB;
        var pool = await StartedPool();
        var id = VolumeId("ppc");
        var record = await Create(pool, id, 100 * MiB);
        Assert.True(record.CapacityBytes >= 100 * MiB);
        Assert.Equal(["create-namespace", "destroy-namespace", "create-namespace", "wipefs"], _ndctl.Changes.Select(c => c.Split(' ')[c.StartsWith("wipefs") ? 0 : 1]));
        Assert.Single(_ndctl.Namespaces);
    }

    [Fact]
    public async Task ANamespaceAboveTheLimitIsDestroyedAndRefused()
    {
        var pool = await StartedPool();
        var id = VolumeId("tight");
        Assert.Equal(StatusCode.OutOfRange, await Failure(() => Create(pool, id, 100 * MiB, limit: 100 * MiB)));
        Assert.Equal(["create-namespace", "destroy-namespace"], _ndctl.Changes.Select(c => c.Split(' ')[1]));
        Assert.Equal("ndctl destroy-namespace --force namespace0.1", _ndctl.Changes[^1]);
        Assert.Empty(_ndctl.Namespaces);
        Assert.Null(pool.GetVolume(id));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "pending")));
        Assert.Equal(64 * GiB, pool.Describe().FreeBytes);
    }

    [Fact]
    public async Task RefusesWhatTheLargestExtentCannotHold()
    {
        _ndctl.MaxExtent = 1 * GiB;
        var pool = await StartedPool();
        Assert.Equal(1 * GiB, pool.Describe().LargestFreeBytes);
        Assert.Equal(StatusCode.ResourceExhausted, await Failure(() => Create(pool, VolumeId("big"), 1 * GiB)));
        Assert.Empty(_ndctl.Changes);
    }

    [Fact]
    public async Task NamespacesNeitherGrowNorCopy()
    {
        var pool = await StartedPool();
        var id = VolumeId("fixed");
        var record = await Create(pool, id, 64 * MiB);
        _ndctl.Changes.Clear();

        var e = await Assert.ThrowsAsync<RpcException>(() => pool.ExpandVolumeAsync(id, record.CapacityBytes + 1, CancellationToken.None));
        Assert.Equal(StatusCode.OutOfRange, e.StatusCode);
        Assert.Contains("pmem namespaces cannot grow", e.Status.Detail);
        Assert.Equal(record.CapacityBytes, (await pool.ExpandVolumeAsync(id, record.CapacityBytes, CancellationToken.None)).CapacityBytes);
        Assert.Equal(record.CapacityBytes, (await pool.ExpandVolumeAsync(id, MiB, CancellationToken.None)).CapacityBytes);

        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => pool.CreateSnapshotAsync(
            StorageId.ForSnapshot("pmem", "pm", "n1", "s").ToString(), "s", id, CancellationToken.None)));
        e = await Assert.ThrowsAsync<RpcException>(() => Create(pool, VolumeId("copy"), 64 * MiB, source: new ContentSource { VolumeId = id }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("snapshot or another volume", e.Status.Detail);
        Assert.Empty(pool.ListSnapshots());
        await pool.DeleteSnapshotAsync(StorageId.ForSnapshot("pmem", "pm", "n1", "s").ToString(), CancellationToken.None);
        Assert.Empty(_ndctl.Changes);
    }

    [Fact]
    public async Task PrepareFindsTheNamespaceByNameAgain()
    {
        var pool = await StartedPool();
        var id = VolumeId("moved");
        await Create(pool, id, 64 * MiB);
        var ns = _ndctl.Namespaces.Single();

        ns.BlockDev = "pmem0.7"; // probe order changed across a reboot
        Assert.Equal("/dev/pmem0.7", await pool.PrepareBackingAsync(id, CancellationToken.None));
        Assert.Equal("/dev/pmem0.7", pool.BackingPathOf(id));
        Assert.Equal("/dev/pmem0.7", new PmemPool("pm", "region0", _dir.Path, _ndctl, _log).BackingPathOf(id));

        ns.Mode = "devdax";
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => pool.PrepareBackingAsync(id, CancellationToken.None)));
        ns.Mode = "fsdax";
        ns.Enabled = false;
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => pool.PrepareBackingAsync(id, CancellationToken.None)));
        _ndctl.Namespaces.Clear();
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => pool.PrepareBackingAsync(id, CancellationToken.None)));
        Assert.Equal(StatusCode.NotFound, await Failure(() => pool.PrepareBackingAsync(VolumeId("never"), CancellationToken.None)));
    }

    [Fact]
    public async Task AVolumeMadeBeforeTheRecordKeptItsDeviceIsFoundByItsOldFileAndMovedIntoTheRecord()
    {
        var pool = await StartedPool();
        var id = VolumeId("old");
        var record = await Create(pool, id, 64 * MiB);
        Assert.Equal("pmem0.1", record.Backing?["blockDev"]);
        // As an earlier release left it: no Backing in the record, the device in blockdevs/<name>.
        await pool.SaveVolumeAsync(record with { Backing = null }, CancellationToken.None);
        var legacy = Path.Combine(_dir.Path, "blockdevs", Ns(id));
        Directory.CreateDirectory(Path.GetDirectoryName(legacy)!);
        await File.WriteAllTextAsync(legacy, "pmem0.1", CancellationToken.None);

        Assert.Equal("/dev/pmem0.1", pool.BackingPathOf(id));
        _ndctl.Namespaces.Single().BlockDev = "pmem0.4";
        Assert.Equal("/dev/pmem0.4", await pool.PrepareBackingAsync(id, CancellationToken.None));

        Assert.Equal("pmem0.4", pool.GetVolume(id)!.Backing?["blockDev"]);
        Assert.False(File.Exists(legacy));
        Assert.Equal("/dev/pmem0.4", new PmemPool("pm", "region0", _dir.Path, _ndctl, _log).BackingPathOf(id));
    }

    [Fact]
    public async Task DeleteDropsTheRecordBeforeTheNamespace()
    {
        var pool = await StartedPool();
        var id = VolumeId("d");
        var record = await Create(pool, id, 64 * MiB);
        await pool.SaveVolumeAsync(record with { Publications = [new PublicationRecord("n2", false, 1, false)] }, CancellationToken.None);
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => pool.DeleteVolumeAsync(id, CancellationToken.None)));
        await pool.SaveVolumeAsync(record, CancellationToken.None);

        var recordAtDestroy = true;
        _ndctl.BeforeChange = line => { if (line.Contains("destroy-namespace", StringComparison.Ordinal)) recordAtDestroy = pool.GetVolume(id) is not null; };
        await pool.DeleteVolumeAsync(id, CancellationToken.None);
        Assert.False(recordAtDestroy);
        Assert.Equal("ndctl destroy-namespace --force namespace0.1", _ndctl.Changes[^1]);
        Assert.Empty(_ndctl.Namespaces);
        Assert.Equal(64 * GiB, pool.Describe().FreeBytes);
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => Task.FromResult(pool.BackingPathOf(id))));

        var changes = _ndctl.Changes.Count;
        await pool.DeleteVolumeAsync(id, CancellationToken.None);
        Assert.Equal(changes, _ndctl.Changes.Count);
    }

    [Fact]
    public async Task StartupDestroysOnlyWhatAnInterruptedOperationMarked()
    {
        var first = await StartedPool();
        var kept = VolumeId("kept");
        await Create(first, kept, 64 * MiB);
        var lost = VolumeId("lost");
        await Create(first, lost, 64 * MiB);
        _ndctl.Namespaces.RemoveAll(n => n.Name == Ns(lost));
        var interrupted = VolumeId("interrupted");
        _ndctl.Add(Ns(interrupted), 64 * MiB);
        File.WriteAllText(Path.Combine(_dir.Path, "pending", Ns(interrupted)), "");
        var unknown = VolumeId("unknown");
        var unknownDev = _ndctl.Add(Ns(unknown), 64 * MiB).Dev;
        _ndctl.Add("scratch", 64 * MiB);
        _ndctl.Changes.Clear();

        var pool = await StartedPool();

        Assert.Equal(["ndctl destroy-namespace --force namespace0.3"], _ndctl.Changes);
        Assert.Equal(["kept", "unknown", "scratch"], _ndctl.Namespaces.Select(n => n.Name == Ns(kept) ? "kept" : n.Name == Ns(unknown) ? "unknown" : n.Name));
        Assert.Contains(_log.Lines, l => l.Contains(unknownDev) && l.Contains("left alone"));
        Assert.Contains(_log.Lines, l => l.Contains(lost) && l.Contains("no namespace"));
        Assert.NotNull(pool.GetVolume(lost));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "pending")));
    }

    [Fact]
    public async Task AcceptsARegionNumberAndAnOldNdctlsBareObject()
    {
        _ndctl.BareSingleObjects = true;
        var pool = await StartedPool(region: "0");
        Assert.Equal(64 * GiB, pool.Describe().TotalBytes);
        await Create(pool, VolumeId("old"), 64 * MiB);
        Assert.StartsWith("ndctl create-namespace --mode fsdax --region region0 ", _ndctl.Changes[0]);
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => StartedPool(region: "region9", root: Path.Combine(_dir.Path, "other"))));
    }

    [Fact]
    public async Task NdctlRunsOneAtATime()
    {
        _ndctl.Delay = TimeSpan.FromMilliseconds(5);
        var a = await StartedPool();
        var b = await StartedPool(root: Path.Combine(_dir.Path, "b"));
        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Create(i % 2 == 0 ? a : b, VolumeId("c" + i), 64 * MiB)));
        Assert.Equal(1, _ndctl.MaxConcurrency);
        Assert.Equal(4, _ndctl.Namespaces.Count);
    }
}

/// <summary>
/// Plays ndctl for the pool: one 64 GiB label-capable region (region0, 16 MiB region alignment), namespaces whose usable
/// size follows the kernel's map=dev layout, and ndctl's refusal of unaligned sizes. Prints what ndctl prints when not
/// on a terminal: arrays of objects with raw integers, nothing at all for no result.
/// </summary>
internal sealed class FakeNdctl : IProcessRunner
{
    private const long RegionSize = 64L << 30, RegionAlign = 16 << 20;
    private int _next = 1, _inFlight;

    public sealed class Namespace
    {
        public required string Dev { get; init; }
        public required string Name { get; init; }
        public long Raw { get; init; }
        public long Size { get; init; }
        public long Align { get; init; }
        public string Mode { get; set; } = "fsdax";
        public string BlockDev { get; set; } = "";
        public bool Enabled { get; set; } = true;
    }

    public List<Namespace> Namespaces { get; } = [];
    public List<string> Changes { get; } = [];
    public long FsdaxAlign { get; set; } = 2 << 20;
    public long? MaxExtent { get; set; }
    public bool BareSingleObjects { get; set; }
    public TimeSpan Delay { get; set; }
    public int MaxConcurrency { get; private set; }
    public Action<string>? BeforeChange { get; set; }

    /// <summary>The kernel's fsdax layout with the page map on the device: map and info block rounded up to the alignment, plus one alignment of padding.</summary>
    public static long UsableOf(long raw, long align) => raw - (raw / 64 + 8192 + align - 1) / align * align - align;

    public Namespace Add(string name, long raw)
    {
        var n = _next++;
        var ns = new Namespace { Dev = $"namespace0.{n}", Name = name, Raw = raw, Size = UsableOf(raw, FsdaxAlign), Align = FsdaxAlign, BlockDev = $"pmem0.{n}" };
        Namespaces.Add(ns);
        return ns;
    }

    public async Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken ct, TimeSpan? timeout = null,
        IReadOnlyCollection<int>? okExitCodes = null)
    {
        var line = program + " " + string.Join(' ', arguments);
        var concurrent = Interlocked.Increment(ref _inFlight);
        MaxConcurrency = Math.Max(MaxConcurrency, concurrent);
        try
        {
            if (Delay > TimeSpan.Zero) await Task.Delay(Delay, ct);
            var result = line switch
            {
                "ndctl list --regions" => new ProcessResult(0, Print([Region()]), ""),
                "ndctl list --namespaces --idle --region region0" => new ProcessResult(0, Print(Namespaces.Select(Json).ToList()), ""),
                _ when line.StartsWith("ndctl list", StringComparison.Ordinal) => new ProcessResult(0, "", ""),
                _ => Change(program, line, arguments),
            };
            if (!(okExitCodes ?? [0]).Contains(result.ExitCode)) throw new CommandFailedException(line, result.ExitCode, result.StandardError);
            return result;
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private ProcessResult Change(string program, string line, IReadOnlyList<string> args)
    {
        Changes.Add(line);
        BeforeChange?.Invoke(line);
        if (program == "wipefs") return new ProcessResult(0, "", "");
        switch (args[0])
        {
            case "create-namespace":
            {
                var size = long.Parse(args[args.ToList().IndexOf("--size") + 1], CultureInfo.InvariantCulture);
                if (size % RegionAlign != 0 || size % FsdaxAlign != 0)
                    return new ProcessResult(234, "", "  Error: '--size=' must align to interleave-width: 1 and alignment: 2097152\n\nfailed to create namespace: Invalid argument\n");
                if (size > Available) return new ProcessResult(234, "", "failed to create namespace: Resource temporarily unavailable\n");
                var ns = Add(args[args.ToList().IndexOf("--name") + 1], size);
                return new ProcessResult(0, Json(ns) + "\n", "");
            }
            case "destroy-namespace":
                if (Namespaces.RemoveAll(n => n.Dev == args[^1]) == 0) return new ProcessResult(250, "", "error destroying namespaces: No such device or address\ndestroyed 0 namespaces\n");
                return new ProcessResult(0, "", "destroyed 1 namespace\n");
            default:
                return new ProcessResult(1, "", $"unexpected {line}\n");
        }
    }

    private long Available => RegionSize - Namespaces.Sum(n => n.Raw);

    private string Region() =>
        $$"""{"dev":"region0","size":{{RegionSize}},"align":{{RegionAlign}},"available_size":{{Available}},"max_available_extent":{{Math.Min(MaxExtent ?? long.MaxValue, Available)}},"type":"pmem","iset_id":-6382611090938810793,"persistence_domain":"memory_controller"}""";

    private static string Json(Namespace n) =>
        $$"""{"dev":"{{n.Dev}}","mode":"{{n.Mode}}","map":"dev","size":{{n.Size}},"uuid":"{{Guid.NewGuid()}}","sector_size":512,"align":{{n.Align}}{{(n.BlockDev.Length > 0 && n.Enabled ? $",\"blockdev\":\"{n.BlockDev}\"" : "")}}{{(n.Enabled ? "" : ",\"state\":\"disabled\"")}},"name":"{{n.Name}}"}""";

    private string Print(List<string> items) => items.Count switch
    {
        0 => "",
        1 when BareSingleObjects => items[0] + "\n",
        _ => "[\n" + string.Join(",\n", items) + "\n]\n",
    };
}
