using System.Globalization;
using System.Text;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Ids;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Pools.Lvm;
using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Node;

public sealed class LvmCommandTests
{
    [Fact]
    public void ExactCommandLines()
    {
        AssertCommand("lvcreate --yes --name v1 --size 12582912b --wipesignatures y --zero y --addtag solar.csi.dev/volume vg0",
            LvmCommands.CreateThick("vg0", "v1", 12 << 20));
        AssertCommand("lvcreate --yes --name v1 --virtualsize 12582912b --thinpool vg0/pool --addtag solar.csi.dev/volume",
            LvmCommands.CreateThin("vg0", "pool", "v1", 12 << 20));
        AssertCommand("lvcreate --yes --snapshot --name s1 --addtag solar.csi.dev/snapshot vg0/v1", LvmCommands.Snapshot("vg0", "v1", "s1"));
        AssertCommand("lvcreate --yes --snapshot --setactivationskip n --name v2 --addtag solar.csi.dev/volume vg0/s1",
            LvmCommands.VolumeFromThin("vg0", "s1", "v2"));
        AssertCommand("lvchange --activate y --ignoreactivationskip vg0/v1", LvmCommands.Activate("vg0", "v1"));
        AssertCommand("lvextend --yes --size 25165824b vg0/v1", LvmCommands.Extend("vg0", "v1", 24 << 20));
        AssertCommand("lvremove --yes vg0/v1", LvmCommands.Remove("vg0", "v1"));
        AssertCommand("lvs --reportformat json --units b --nosuffix --options lv_name,vg_name,lv_size,lv_tags,pool_lv,origin,lv_attr,lv_path,data_percent vg0",
            LvmCommands.ReportLogicalVolumes("vg0"));
        AssertCommand("vgs --reportformat json --units b --nosuffix --options vg_name,vg_size,vg_free vg0", LvmCommands.ReportVolumeGroup("vg0"));
    }

    [Fact]
    public void ByteSizesAreWholeSectors()
    {
        // lvm 2.03.16: "Size is not a multiple of 512. Try using 9999872 or 10000384." for --size 10000000b.
        Assert.Contains("10000384b", LvmCommands.CreateThin("vg0", "pool", "v1", 10_000_000).Arguments);
        Assert.Contains("10000384b", LvmCommands.CreateThick("vg0", "v1", 10_000_000).Arguments);
        Assert.Contains("512b", LvmCommands.Extend("vg0", "v1", 1).Arguments);
    }

    [Fact]
    public void TagsAreLegalLvmTags()
    {
        foreach (var tag in new[] { LvmCommands.VolumeTag, LvmCommands.SnapshotTag })
            Assert.Matches("^[A-Za-z0-9_+./=!:&#-]+$", tag);
    }

    private static void AssertCommand(string expected, (string Program, IReadOnlyList<string> Arguments) actual) =>
        Assert.Equal(expected, actual.Program + " " + string.Join(' ', actual.Arguments));
}

/// <summary>
/// Real output of lvm 2.03.16 (Debian 12) on a 256 MiB loop-device VG. lvcreate cannot run without device-mapper, so
/// the thin pool, thin LV, thin snapshot and thick LV were written into the VG metadata with vgcfgrestore --force and
/// listed by the real lvs: their state shows as 'X' (unknown) for the same reason.
/// </summary>
public sealed class LvmReportTests
{
    private const string EmptyVgs = """
          {
              "report": [
                  {
                      "vg": [
                          {"vg_name":"solar-test", "vg_size":"264241152", "vg_free":"264241152"}
                      ]
                  }
              ]
          }
        """;

    private const string EmptyLvs = """
          {
              "report": [
                  {
                      "lv": [
                      ]
                  }
              ]
          }
        """;

    private const string Vgs = """
          {
              "report": [
                  {
                      "vg": [
                          {"vg_name":"solar-test", "vg_size":"264241152", "vg_free":"109051904"}
                      ]
                  }
              ]
          }
        """;

    private const string Lvs = """
          {
              "report": [
                  {
                      "lv": [
                          {"lv_name":"pool", "vg_name":"solar-test", "lv_size":"134217728", "lv_tags":"", "pool_lv":"", "origin":"", "lv_attr":"twi---tz--", "lv_path":"", "data_percent":""},
                          {"lv_name":"s9a8b7c6d5e4f3a2b1c0d9e8f", "vg_name":"solar-test", "lv_size":"20971520", "lv_tags":"solar.csi.dev/snapshot", "pool_lv":"pool", "origin":"v5f1c0a9e3b7d2c4e6f8a0b1c", "lv_attr":"Vwi-XXtz-k", "lv_path":"/dev/solar-test/s9a8b7c6d5e4f3a2b1c0d9e8f", "data_percent":""},
                          {"lv_name":"v1e2d3c4b5a69788796a5b4c3", "vg_name":"solar-test", "lv_size":"12582912", "lv_tags":"backup=nightly,solar.csi.dev/volume", "pool_lv":"", "origin":"", "lv_attr":"-wi-XX----", "lv_path":"/dev/solar-test/v1e2d3c4b5a69788796a5b4c3", "data_percent":""},
                          {"lv_name":"v5f1c0a9e3b7d2c4e6f8a0b1c", "vg_name":"solar-test", "lv_size":"20971520", "lv_tags":"solar.csi.dev/volume", "pool_lv":"pool", "origin":"", "lv_attr":"Vwi-XXtz--", "lv_path":"/dev/solar-test/v5f1c0a9e3b7d2c4e6f8a0b1c", "data_percent":""}
                      ]
                  }
              ]
          }
        """;

    // With log/report_command_log=1 lvm appends its log; 2.03.16 leaves a trailing comma after the last entry.
    private const string LvsWithLog = """
          {
              "report": [
                  {
                      "lv": [
                          {"lv_name":"pool", "vg_name":"solar-test", "lv_size":"134217728", "lv_tags":"", "pool_lv":"", "origin":"", "lv_attr":"twi---tz--", "lv_path":"", "data_percent":""}
                      ]
                  }
              ]
              ,
              "log": [
                  {"log_seq_num":"1", "log_type":"error", "log_context":"processing", "log_object_type":"lv", "log_object_name":"pool", "log_object_id":"P4uExo-uCuI-qbta-Bc21-1RPO-c5Bc-Z41tno", "log_object_group":"solar-test", "log_object_group_id":"34uOfx-5maC-6NGW-co2D-cebg-v4c7-LKycJp", "log_message":"/dev/mapper/control: open failed: No such device", "log_errno":"-1", "log_ret_code":"0"},
                  {"log_seq_num":"2", "log_type":"error", "log_context":"processing", "log_object_type":"lv", "log_object_name":"pool", "log_object_id":"P4uExo-uCuI-qbta-Bc21-1RPO-c5Bc-Z41tno", "log_object_group":"solar-test", "log_object_group_id":"34uOfx-5maC-6NGW-co2D-cebg-v4c7-LKycJp", "log_message":"Failure to communicate with kernel device-mapper driver.", "log_errno":"-1", "log_ret_code":"0"},
              ]
          }
        """;

    private const string VgsWithLog = """
          {
              "report": [
                  {
                      "vg": [
                          {"vg_name":"solar-test", "vg_size":"264241152", "vg_free":"264241152"}
                      ]
                  }
              ]
              ,
              "log": [
                  {"log_seq_num":"2", "log_type":"error", "log_context":"processing", "log_object_type":"vg", "log_object_name":"nonexist-vg", "log_object_id":"", "log_object_group":"", "log_object_group_id":"", "log_message":"Volume group \"nonexist-vg\" not found", "log_errno":"-1", "log_ret_code":"0"},
                  {"log_seq_num":"4", "log_type":"status", "log_context":"processing", "log_object_type":"vg", "log_object_name":"nonexist-vg", "log_object_id":"", "log_object_group":"", "log_object_group_id":"", "log_message":"failure", "log_errno":"-1", "log_ret_code":"5"}
              ]
          }
        """;

    // Not captured (no device-mapper here): active rows written in exactly the format of the captured output above,
    // with the state, open and data_percent values lvs prints for active thin and thick LVs.
    private const string ActiveLvs = """
          {
              "report": [
                  {
                      "lv": [
                          {"lv_name":"pool", "vg_name":"vg0", "lv_size":"536870912", "lv_tags":"", "pool_lv":"", "origin":"", "lv_attr":"twi-aotz--", "lv_path":"", "data_percent":"12.50"},
                          {"lv_name":"v5f1c0a9e3b7d2c4e6f8a0b1c", "vg_name":"vg0", "lv_size":"20971520", "lv_tags":"solar.csi.dev/volume", "pool_lv":"pool", "origin":"", "lv_attr":"Vwi-aotz--", "lv_path":"/dev/vg0/v5f1c0a9e3b7d2c4e6f8a0b1c", "data_percent":"3.27"},
                          {"lv_name":"v1e2d3c4b5a69788796a5b4c3", "vg_name":"vg0", "lv_size":"12582912", "lv_tags":"solar.csi.dev/volume", "pool_lv":"", "origin":"", "lv_attr":"-wi-a-----", "lv_path":"/dev/vg0/v1e2d3c4b5a69788796a5b4c3", "data_percent":""}
                      ]
                  }
              ]
          }
        """;

    [Fact]
    public void ParsesRealVgsOutput()
    {
        Assert.Equal([new VolumeGroupReport("solar-test", 264241152, 264241152)], LvmReport.ParseVolumeGroups(EmptyVgs));
        Assert.Equal([new VolumeGroupReport("solar-test", 264241152, 109051904)], LvmReport.ParseVolumeGroups(Vgs));
        Assert.Equal([new VolumeGroupReport("solar-test", 264241152, 264241152)], LvmReport.ParseVolumeGroups(VgsWithLog));
    }

    [Fact]
    public void ParsesRealLvsOutput()
    {
        Assert.Empty(LvmReport.ParseLogicalVolumes(EmptyLvs));
        Assert.Empty(LvmReport.ParseLogicalVolumes(""));
        var lvs = LvmReport.ParseLogicalVolumes(Lvs).ToDictionary(l => l.Name);
        Assert.Equal(4, lvs.Count);

        var pool = lvs["pool"];
        Assert.True(pool.IsThinPool);
        Assert.False(pool.IsThin);
        Assert.Equal(128L << 20, pool.SizeBytes);
        Assert.Empty(pool.Tags);
        Assert.Equal("", pool.Path);

        var snapshot = lvs["s9a8b7c6d5e4f3a2b1c0d9e8f"];
        Assert.True(snapshot.IsThin);
        Assert.Equal(("pool", "v5f1c0a9e3b7d2c4e6f8a0b1c"), (snapshot.PoolLv, snapshot.Origin));
        Assert.True(snapshot.HasTag(LvmCommands.SnapshotTag));
        Assert.Equal('k', snapshot.Attributes[9]);

        var thick = lvs["v1e2d3c4b5a69788796a5b4c3"];
        Assert.False(thick.IsThin);
        Assert.Equal(["backup=nightly", LvmCommands.VolumeTag], thick.Tags);
        Assert.Equal(12L << 20, thick.SizeBytes);
        Assert.Equal("/dev/solar-test/v1e2d3c4b5a69788796a5b4c3", thick.Path);

        var thin = lvs["v5f1c0a9e3b7d2c4e6f8a0b1c"];
        Assert.True(thin.IsThin);
        Assert.Equal("pool", thin.PoolLv);
        Assert.Null(thin.DataPercent);
        Assert.False(thin.IsOpen);
    }

    [Fact]
    public void ToleratesTheLogSectionAndItsTrailingComma()
    {
        var lv = Assert.Single(LvmReport.ParseLogicalVolumes(LvsWithLog));
        Assert.Equal("pool", lv.Name);
    }

    [Fact]
    public void ReadsStateOpenAndDataPercentOfActiveRows()
    {
        var lvs = LvmReport.ParseLogicalVolumes(ActiveLvs).ToDictionary(l => l.Name);
        Assert.Equal(12.5, lvs["pool"].DataPercent);
        Assert.True(lvs["v5f1c0a9e3b7d2c4e6f8a0b1c"].IsOpen);
        Assert.Equal(3.27, lvs["v5f1c0a9e3b7d2c4e6f8a0b1c"].DataPercent);
        Assert.False(lvs["v1e2d3c4b5a69788796a5b4c3"].IsOpen);
        Assert.Null(lvs["v1e2d3c4b5a69788796a5b4c3"].DataPercent);
    }

    [Fact]
    public void AcceptsNumbersAsJsonNumbersAndRejectsUnitSuffixes()
    {
        const string std = """{"report":[{"vg":[{"vg_name":"vg0","vg_size":1073741824,"vg_free":0}]}]}""";
        Assert.Equal([new VolumeGroupReport("vg0", 1 << 30, 0)], LvmReport.ParseVolumeGroups(std));
        const string human = """{"report":[{"vg":[{"vg_name":"vg0","vg_size":"<1.00g","vg_free":"0 "}]}]}""";
        Assert.Throws<FormatException>(() => LvmReport.ParseVolumeGroups(human));
    }
}

public sealed class LvmPoolTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly TempDir _dir = new();
    private readonly FakeLvm _lvm = new();
    private readonly ListLogger _log = new();

    public void Dispose() => _dir.Dispose();

    private LvmPool NewPool(string? thinPool = "pool") => new("fast", "vg0", thinPool, _dir.Path, _lvm, _log);

    private async Task<LvmPool> StartedPool(string? thinPool = "pool")
    {
        var pool = NewPool(thinPool);
        await pool.InitializeAsync(CancellationToken.None);
        return pool;
    }

    private static string VolumeId(string name) => StorageId.ForVolume("lvm", "fast", "n1", name).ToString();
    private static string SnapshotId(string name) => StorageId.ForSnapshot("lvm", "fast", "n1", name).ToString();
    private static string Lv(string id) => PoolRecords.NameOf(id);

    private static Task<VolumeRecord> Create(LvmPool pool, string id, long bytes, long limit = 0, Dictionary<string, string>? parameters = null,
        ContentSource? source = null) =>
        pool.CreateVolumeAsync(id, "pvc", bytes, limit, parameters ?? new(), source, CancellationToken.None);

    private static async Task<StatusCode> Failure(Func<Task> action) => (await Assert.ThrowsAsync<RpcException>(action)).StatusCode;

    [Fact]
    public async Task CreatesThinByDefaultAndRecordsTheSizeLvmGave()
    {
        var pool = await StartedPool();
        var id = VolumeId("a");
        var record = await Create(pool, id, 10 * MiB + 1);

        Assert.Equal([$"lvcreate --yes --name {Lv(id)} --virtualsize 10486272b --thinpool vg0/pool --addtag solar.csi.dev/volume"], _lvm.Changes);
        Assert.Equal(12 * MiB, record.CapacityBytes);
        Assert.Equal(record.CreatedBy(), pool.GetVolume(id)!.CreatedBy());
        Assert.Equal($"/dev/vg0/{Lv(id)}", pool.BackingPathOf(id));
        var info = pool.Describe();
        Assert.Equal((512 * MiB, 500 * MiB, 500 * MiB, true, true), (info.TotalBytes, info.FreeBytes, info.LargestFreeBytes, info.SupportsSnapshots, info.SupportsBlock));
        Assert.Equal(record.CreatedBy(), (await Create(pool, id, 10 * MiB + 1)).CreatedBy());
        Assert.Single(_lvm.Changes);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "pending")));
    }

    [Fact]
    public async Task CreatesThickWhenAskedOrWithoutAThinPool()
    {
        var pool = await StartedPool();
        var thick = VolumeId("thick");
        var record = await Create(pool, thick, 5 * MiB, parameters: new() { [LvmPool.TypeParameter] = "thick" });
        Assert.Equal([$"lvcreate --yes --name {Lv(thick)} --size 5242880b --wipesignatures y --zero y --addtag solar.csi.dev/volume vg0"], _lvm.Changes);
        Assert.Equal(8 * MiB, record.CapacityBytes);
        Assert.Equal("thick", record.Parameters[LvmPool.TypeParameter]);
        Assert.Equal(512 * MiB, pool.Describe().FreeBytes); // the thin pool's numbers: thick LVs do not use it

        var plain = await StartedPool(thinPool: null);
        var other = VolumeId("other");
        await Create(plain, other, 4 * MiB);
        Assert.StartsWith($"lvcreate --yes --name {Lv(other)} --size ", _lvm.Changes[^1]);
        var info = plain.Describe();
        Assert.Equal((1024 * MiB, 1024 * MiB - 520 * MiB - 8 * MiB - 4 * MiB, false), (info.TotalBytes, info.FreeBytes, info.SupportsSnapshots));
    }

    [Fact]
    public async Task LvmTypeMustBeThinOrThickAndThinNeedsAThinPool()
    {
        var plain = await StartedPool(thinPool: null);
        var e = await Assert.ThrowsAsync<RpcException>(() => Create(plain, VolumeId("x"), MiB, parameters: new() { ["lvmType"] = "thin" }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("lvmType", e.Status.Detail);
        e = await Assert.ThrowsAsync<RpcException>(() => Create(plain, VolumeId("x"), MiB, parameters: new() { ["lvmType"] = "striped" }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("lvmType", e.Status.Detail);
        Assert.Empty(_lvm.Changes);
        Assert.Empty(plain.ListVolumes());
    }

    [Fact]
    public async Task ARoundedSizeAboveTheLimitIsRemovedAndRefused()
    {
        var pool = await StartedPool();
        var id = VolumeId("tight");
        Assert.Equal(StatusCode.OutOfRange, await Failure(() => Create(pool, id, 10 * MiB, limit: 10 * MiB)));
        Assert.Equal([$"lvcreate --yes --name {Lv(id)} --virtualsize 10485760b --thinpool vg0/pool --addtag solar.csi.dev/volume", $"lvremove --yes vg0/{Lv(id)}"],
            _lvm.Changes);
        Assert.Null(pool.GetVolume(id));
        Assert.Null(_lvm.Find(Lv(id)));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "pending")));
        Assert.Equal(512 * MiB, pool.Describe().FreeBytes);
        Assert.Equal(12 * MiB, (await Create(pool, id, 10 * MiB, limit: 12 * MiB)).CapacityBytes);
    }

    [Fact]
    public async Task ThinLvsAreNotOvercommitted()
    {
        var pool = await StartedPool();
        await Create(pool, VolumeId("big"), 400 * MiB);
        Assert.Equal(StatusCode.ResourceExhausted, await Failure(() => Create(pool, VolumeId("more"), 200 * MiB)));
        Assert.Equal(112 * MiB, pool.Describe().FreeBytes);
        var thick = await StartedPool(thinPool: null);
        Assert.Equal(StatusCode.ResourceExhausted, await Failure(() => Create(thick, VolumeId("huge"), 600 * MiB)));
        Assert.Single(_lvm.Changes);
    }

    [Fact]
    public async Task DeleteDropsTheRecordBeforeTheLvAndRefusesAnOpenLv()
    {
        var pool = await StartedPool();
        var id = VolumeId("d");
        await Create(pool, id, 8 * MiB);
        _lvm.Find(Lv(id))!.Open = true;
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => pool.DeleteVolumeAsync(id, CancellationToken.None)));
        Assert.NotNull(pool.GetVolume(id));

        _lvm.Find(Lv(id))!.Open = false;
        var recordAtRemoval = true;
        _lvm.BeforeChange = line => { if (line.StartsWith("lvremove", StringComparison.Ordinal)) recordAtRemoval = pool.GetVolume(id) is not null; };
        await pool.DeleteVolumeAsync(id, CancellationToken.None);
        Assert.False(recordAtRemoval);
        Assert.Equal($"lvremove --yes vg0/{Lv(id)}", _lvm.Changes[^1]);
        Assert.Null(_lvm.Find(Lv(id)));
        Assert.Equal(512 * MiB, pool.Describe().FreeBytes);

        await pool.DeleteVolumeAsync(id, CancellationToken.None);
        Assert.Equal(2, _lvm.Changes.Count);
    }

    [Fact]
    public async Task DeleteRefusesAPublishedVolume()
    {
        var pool = await StartedPool();
        var id = VolumeId("p");
        var record = await Create(pool, id, 8 * MiB);
        await pool.SaveVolumeAsync(record with { Publications = [new PublicationRecord("n2", false, 1, false)] }, CancellationToken.None);
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => pool.DeleteVolumeAsync(id, CancellationToken.None)));
        Assert.NotNull(_lvm.Find(Lv(id)));
    }

    [Fact]
    public async Task StartupRemovesOnlyWhatAnInterruptedOperationMarked()
    {
        var first = await StartedPool();
        var kept = VolumeId("kept");
        await Create(first, kept, 8 * MiB);
        var lost = VolumeId("lost");
        await Create(first, lost, 4 * MiB);
        _lvm.Lvs.Remove(_lvm.Find(Lv(lost))!);
        var interrupted = VolumeId("interrupted");
        _lvm.Add(Lv(interrupted), 8 * MiB, LvmCommands.VolumeTag, pool: "pool");
        File.WriteAllText(Path.Combine(_dir.Path, "pending", Lv(interrupted)), "");
        var unknown = VolumeId("unknown");
        _lvm.Add(Lv(unknown), 8 * MiB, LvmCommands.VolumeTag, pool: "pool");
        _lvm.Changes.Clear();

        var pool = await StartedPool();

        Assert.Equal([$"lvremove --yes vg0/{Lv(interrupted)}"], _lvm.Changes);
        Assert.NotNull(_lvm.Find(Lv(unknown)));
        Assert.Contains(_log.Lines, l => l.Contains(Lv(unknown)) && l.Contains("left alone"));
        Assert.NotNull(pool.GetVolume(lost));
        Assert.Contains(_log.Lines, l => l.Contains(lost) && l.Contains("missing"));
        Assert.Equal(new[] { kept, lost }.Order(StringComparer.Ordinal), pool.ListVolumes().Select(v => v.VolumeId));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "pending")));
    }

    [Fact]
    public async Task ACreateAfterAnInterruptedOneStartsOverButAnUnknownLvIsNotTouched()
    {
        var pool = await StartedPool();
        var id = VolumeId("again");
        _lvm.Add(Lv(id), 4 * MiB, LvmCommands.VolumeTag, pool: "pool");
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => Create(pool, id, 8 * MiB)));
        Assert.Empty(_lvm.Changes);

        File.WriteAllText(Path.Combine(_dir.Path, "pending", Lv(id)), "");
        var record = await Create(pool, id, 8 * MiB);
        Assert.Equal([$"lvremove --yes vg0/{Lv(id)}", $"lvcreate --yes --name {Lv(id)} --virtualsize 8388608b --thinpool vg0/pool --addtag solar.csi.dev/volume"],
            _lvm.Changes);
        Assert.Equal(8 * MiB, record.CapacityBytes);
    }

    [Fact]
    public async Task AFailedLvcreateLeavesNothingBehind()
    {
        var pool = await StartedPool();
        var id = VolumeId("fails");
        _lvm.Fail = line => line.StartsWith("lvextend", StringComparison.Ordinal);
        var source = VolumeId("src");
        await Create(pool, source, 8 * MiB);
        await Assert.ThrowsAsync<CommandFailedException>(() => Create(pool, id, 16 * MiB, source: new ContentSource { VolumeId = source }));
        Assert.Null(_lvm.Find(Lv(id)));
        Assert.Equal($"lvremove --yes vg0/{Lv(id)}", _lvm.Changes[^1]);
        Assert.Null(pool.GetVolume(id));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "pending")));
    }

    [Fact]
    public async Task SnapshotsRestoresAndClonesAreThinSnapshots()
    {
        var pool = await StartedPool();
        var source = VolumeId("src");
        await Create(pool, source, 8 * MiB);
        var snapId = SnapshotId("snap");
        var snap = await pool.CreateSnapshotAsync(snapId, "snap", source, CancellationToken.None);
        Assert.Equal((8 * MiB, source), (snap.SizeBytes, snap.SourceVolumeId));
        Assert.Equal($"lvcreate --yes --snapshot --name {Lv(snapId)} --addtag solar.csi.dev/snapshot vg0/{Lv(source)}", _lvm.Changes[^1]);
        Assert.Equal([snap], pool.ListSnapshots());
        Assert.Equal(512 * MiB - 16 * MiB, pool.Describe().FreeBytes);
        Assert.Equal(snap, await pool.CreateSnapshotAsync(snapId, "snap", source, CancellationToken.None));

        var restored = VolumeId("restored");
        _lvm.Changes.Clear();
        var record = await Create(pool, restored, 14 * MiB, source: new ContentSource { SnapshotId = snapId });
        Assert.Equal([
            $"lvcreate --yes --snapshot --setactivationskip n --name {Lv(restored)} --addtag solar.csi.dev/volume vg0/{Lv(snapId)}",
            $"lvextend --yes --size 14680064b vg0/{Lv(restored)}",
        ], _lvm.Changes);
        Assert.Equal((16 * MiB, snapId), (record.CapacityBytes, record.SourceSnapshotId));

        var clone = VolumeId("clone");
        _lvm.Changes.Clear();
        Assert.Equal(8 * MiB, (await Create(pool, clone, 8 * MiB, source: new ContentSource { VolumeId = source })).CapacityBytes);
        Assert.Equal([$"lvcreate --yes --snapshot --setactivationskip n --name {Lv(clone)} --addtag solar.csi.dev/volume vg0/{Lv(source)}"], _lvm.Changes);

        Assert.Equal(StatusCode.OutOfRange, await Failure(() => Create(pool, VolumeId("small"), 4 * MiB, source: new ContentSource { VolumeId = source })));
        Assert.Equal(StatusCode.InvalidArgument, await Failure(() => Create(pool, VolumeId("t"), 8 * MiB, parameters: new() { ["lvmType"] = "thick" },
            source: new ContentSource { VolumeId = source })));
        Assert.Equal(StatusCode.NotFound, await Failure(() => Create(pool, VolumeId("n"), 8 * MiB, source: new ContentSource { SnapshotId = SnapshotId("none") })));

        _lvm.Changes.Clear();
        await pool.DeleteSnapshotAsync(snapId, CancellationToken.None);
        Assert.Equal([$"lvremove --yes vg0/{Lv(snapId)}"], _lvm.Changes);
        Assert.Empty(pool.ListSnapshots());
        Assert.NotNull(_lvm.Find(Lv(restored)));
    }

    [Fact]
    public async Task SnapshotsAndClonesNeedAThinPool()
    {
        var pool = await StartedPool();
        var thick = VolumeId("thick");
        await Create(pool, thick, 8 * MiB, parameters: new() { ["lvmType"] = "thick" });
        var e = await Assert.ThrowsAsync<RpcException>(() => pool.CreateSnapshotAsync(SnapshotId("s"), "s", thick, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("snapshots need a thin pool", e.Status.Detail);
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => Create(pool, VolumeId("c"), 8 * MiB, source: new ContentSource { VolumeId = thick })));

        var plain = await StartedPool(thinPool: null);
        e = await Assert.ThrowsAsync<RpcException>(() => plain.CreateSnapshotAsync(SnapshotId("s"), "s", thick, CancellationToken.None));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("snapshots need a thin pool", e.Status.Detail);
        Assert.Single(_lvm.Changes);
    }

    [Fact]
    public async Task ExpandExtendsToWholeExtentsAndNeverShrinks()
    {
        var pool = await StartedPool();
        var id = VolumeId("grow");
        await Create(pool, id, 8 * MiB);
        var grown = await pool.ExpandVolumeAsync(id, 10 * MiB, CancellationToken.None);
        Assert.Equal($"lvextend --yes --size 10485760b vg0/{Lv(id)}", _lvm.Changes[^1]);
        Assert.Equal(12 * MiB, grown.CapacityBytes);
        Assert.Equal(grown.CreatedBy(), pool.GetVolume(id)!.CreatedBy());
        Assert.Equal(500 * MiB, pool.Describe().FreeBytes);
        Assert.Equal(12 * MiB, (await pool.ExpandVolumeAsync(id, 4 * MiB, CancellationToken.None)).CapacityBytes);
        Assert.Equal(2, _lvm.Changes.Count);
        Assert.True(pool.NodeExpansionRequired);
        Assert.Equal(StatusCode.ResourceExhausted, await Failure(() => pool.ExpandVolumeAsync(id, 1024 * MiB, CancellationToken.None)));
    }

    [Fact]
    public async Task PrepareActivatesTheLvAndRefusesAMissingOne()
    {
        var pool = await StartedPool();
        var id = VolumeId("stage");
        await Create(pool, id, 8 * MiB);
        Assert.Equal($"/dev/vg0/{Lv(id)}", await pool.PrepareBackingAsync(id, CancellationToken.None));
        Assert.Equal($"lvchange --activate y --ignoreactivationskip vg0/{Lv(id)}", _lvm.Changes[^1]);

        _lvm.Lvs.Remove(_lvm.Find(Lv(id))!);
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => pool.PrepareBackingAsync(id, CancellationToken.None)));
        Assert.Equal(StatusCode.NotFound, await Failure(() => pool.PrepareBackingAsync(VolumeId("never"), CancellationToken.None)));
    }

    [Fact]
    public async Task StartupRefusesAMissingVolumeGroupOrThinPool()
    {
        Assert.Equal(StatusCode.FailedPrecondition, await Failure(() => new LvmPool("fast", "vg0", "nopool", _dir.Path, _lvm, _log).InitializeAsync(CancellationToken.None)));
        _lvm.VgMissing = true;
        await Assert.ThrowsAnyAsync<Exception>(() => NewPool().InitializeAsync(CancellationToken.None));
    }
}

internal static class VolumeRecordTestExtensions
{
    public static (string, DateTimeOffset, long) CreatedBy(this VolumeRecord r) => (r.VolumeId, r.Created, r.CapacityBytes);
}

/// <summary>
/// Plays lvm for the pool: keeps a VG of LVs, answers vgs/lvs in exactly the JSON lvm 2.03 prints, and rounds sizes to
/// 4 MiB extents. A 1 GiB VG holds a 512 MiB thin pool (plus its metadata LV and spare, 4 MiB each).
/// </summary>
internal sealed class FakeLvm : IProcessRunner
{
    public const long Extent = 4 << 20;
    private const long VgSize = 1L << 30;

    public sealed class Lv
    {
        public required string Name { get; init; }
        public long Size { get; set; }
        public List<string> Tags { get; } = [];
        public string Pool { get; init; } = "";
        public string Origin { get; init; } = "";
        public char Type { get; init; } = '-';
        public bool Active { get; set; } = true;
        public bool Open { get; set; }
        public bool Skip { get; init; }
    }

    public List<Lv> Lvs { get; } = [new() { Name = "pool", Size = 512L << 20, Type = 't' }];
    /// <summary>Every command that changes something (not vgs/lvs), in order.</summary>
    public List<string> Changes { get; } = [];
    public Func<string, bool>? Fail { get; set; }
    public Action<string>? BeforeChange { get; set; }
    public bool VgMissing { get; set; }

    public Lv? Find(string name) => Lvs.FirstOrDefault(l => l.Name == name);

    public void Add(string name, long size, string tag, string pool = "")
    {
        var lv = new Lv { Name = name, Size = size, Pool = pool, Type = pool.Length > 0 ? 'V' : '-' };
        lv.Tags.Add(tag);
        Lvs.Add(lv);
    }

    public Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken ct, TimeSpan? timeout = null,
        IReadOnlyCollection<int>? okExitCodes = null)
    {
        var line = program + " " + string.Join(' ', arguments);
        var result = program switch
        {
            "vgs" => VgMissing ? new ProcessResult(5, "", "  Volume group \"vg0\" not found\n") : new ProcessResult(0, Vgs(), ""),
            "lvs" => new ProcessResult(0, LvsJson(), ""),
            _ => Change(line, arguments),
        };
        if (!(okExitCodes ?? [0]).Contains(result.ExitCode)) throw new CommandFailedException(line, result.ExitCode, result.StandardError);
        return Task.FromResult(result);
    }

    private ProcessResult Change(string line, IReadOnlyList<string> args)
    {
        Changes.Add(line);
        BeforeChange?.Invoke(line);
        if (Fail?.Invoke(line) == true) return new ProcessResult(5, "", "  injected failure\n");
        var target = args[^1].Split('/')[^1];
        switch (line.Split(' ')[0])
        {
            case "lvcreate":
            {
                var name = Value(args, "--name");
                if (Find(name) is not null) return new ProcessResult(5, "", $"  Logical Volume \"{name}\" already exists in volume group \"vg0\"\n");
                Lv lv;
                if (args.Contains("--snapshot"))
                {
                    var origin = Find(target)!;
                    var skip = !(args.Contains("--setactivationskip") && Value(args, "--setactivationskip") == "n");
                    lv = new Lv { Name = name, Size = origin.Size, Pool = origin.Pool, Origin = target, Type = 'V', Skip = skip, Active = !skip };
                }
                else if (args.Contains("--virtualsize"))
                {
                    if (!TryBytes(Value(args, "--virtualsize"), out var bytes)) return NotSectors(Value(args, "--virtualsize"));
                    lv = new Lv { Name = name, Size = RoundUp(bytes), Pool = Value(args, "--thinpool").Split('/')[1], Type = 'V' };
                }
                else
                {
                    if (!TryBytes(Value(args, "--size"), out var bytes)) return NotSectors(Value(args, "--size"));
                    if (RoundUp(bytes) > VgFree)
                        return new ProcessResult(5, "", $"  Volume group \"vg0\" has insufficient free space ({VgFree / Extent} extents): {RoundUp(bytes) / Extent} required.\n");
                    lv = new Lv { Name = name, Size = RoundUp(bytes) };
                }
                for (var i = 0; i < args.Count - 1; i++)
                    if (args[i] == "--addtag") lv.Tags.Add(args[i + 1]);
                Lvs.Add(lv);
                return new ProcessResult(0, $"  Logical volume \"{name}\" created.\n", "");
            }
            case "lvextend":
                if (!TryBytes(Value(args, "--size"), out var size)) return NotSectors(Value(args, "--size"));
                Find(target)!.Size = RoundUp(size);
                return new ProcessResult(0, "", "");
            case "lvremove":
                if (Find(target) is not { } removed) return new ProcessResult(5, "", $"  Failed to find logical volume \"vg0/{target}\"\n");
                if (removed.Open) return new ProcessResult(5, "", $"  Logical volume vg0/{target} in use.\n");
                Lvs.Remove(removed);
                return new ProcessResult(0, $"  Logical volume \"{target}\" successfully removed.\n", "");
            case "lvchange":
                Find(target)!.Active = true;
                return new ProcessResult(0, "", "");
            default:
                return new ProcessResult(3, "", $"  unexpected command {line}\n");
        }
    }

    private long VgFree => VgSize - Lvs.Where(l => l.Type is 't' or '-').Sum(l => l.Size) - 2 * Extent;

    private static ProcessResult NotSectors(string value) =>
        new(3, "", $"  Size is not a multiple of 512.\n  Invalid argument for --size: {value}\n  Error during parsing of command line.\n");

    private static bool TryBytes(string value, out long bytes) =>
        long.TryParse(value.TrimEnd('b'), NumberStyles.None, CultureInfo.InvariantCulture, out bytes) && value.EndsWith('b') && bytes % 512 == 0;

    private static long RoundUp(long bytes) => (bytes + Extent - 1) / Extent * Extent;

    private static string Value(IReadOnlyList<string> args, string flag) => args[args.ToList().IndexOf(flag) + 1];

    private string Vgs() => $$"""
          {
              "report": [
                  {
                      "vg": [
                          {"vg_name":"vg0", "vg_size":"{{VgSize}}", "vg_free":"{{VgFree}}"}
                      ]
                  }
              ]
          }

        """;

    private string LvsJson()
    {
        var rows = Lvs.OrderBy(l => l.Name, StringComparer.Ordinal).Select(l =>
        {
            var attr = l.Type == 't'
                ? "twi-aotz--"
                : $"{l.Type}wi-{(l.Active ? 'a' : '-')}{(l.Open ? 'o' : '-')}{(l.Type == 'V' ? "tz" : "--")}-{(l.Skip ? 'k' : '-')}";
            var path = l.Type == 't' ? "" : $"/dev/vg0/{l.Name}";
            var percent = l.Type == 't' ? "3.12" : l.Type == 'V' && l.Active ? "0.00" : "";
            return $$"""                  {"lv_name":"{{l.Name}}", "vg_name":"vg0", "lv_size":"{{l.Size}}", "lv_tags":"{{string.Join(',', l.Tags)}}", "pool_lv":"{{l.Pool}}", "origin":"{{l.Origin}}", "lv_attr":"{{attr}}", "lv_path":"{{path}}", "data_percent":"{{percent}}"}""";
        });
        return new StringBuilder()
            .Append("  {\n      \"report\": [\n          {\n              \"lv\": [\n")
            .Append(string.Join(",\n", rows)).Append('\n')
            .Append("              ]\n          }\n      ]\n  }\n").ToString();
    }
}

/// <summary>Keeps formatted log lines so tests can check what a pool reported and left alone.</summary>
internal sealed class ListLogger : ILogger
{
    public List<string> Lines { get; } = [];
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Lines) Lines.Add($"{logLevel}: {formatter(state, exception)}");
    }
}
