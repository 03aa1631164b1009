using Google.Protobuf;
using SolarCsi.Agent.V1;
using SolarCsi.Core.Storage;

namespace SolarCsi.Node.Agent;

/// <summary>
/// Group snapshot records kept by this agent (for groups whose id names this node), and which of this node's
/// snapshots belong to a group, so a member cannot be deleted on its own. Protobuf JSON files, written atomically.
/// </summary>
public sealed class GroupSnapshotStore
{
    private readonly string _groups, _members;

    public GroupSnapshotStore(string root)
    {
        _groups = Path.Combine(root, "records");
        _members = Path.Combine(root, "members");
        Directory.CreateDirectory(_groups);
        Directory.CreateDirectory(_members);
    }

    private static string FileOf(string dir, string id) => Path.Combine(dir, Pools.PoolRecords.NameOf(id) + ".json");

    public Task SaveAsync(GroupSnapshotRecord record, CancellationToken ct) =>
        AtomicFile.WriteAsync(FileOf(_groups, record.GroupSnapshotId), System.Text.Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(record)), ct);

    public GroupSnapshotRecord? Get(string groupId) => Read(FileOf(_groups, groupId));

    public IEnumerable<GroupSnapshotRecord> All() =>
        Directory.EnumerateFiles(_groups, "g*.json").Select(Read).OfType<GroupSnapshotRecord>();

    /// <summary>Whether the group's record was set aside as unreadable (its members must not be orphaned).</summary>
    public bool IsUnreadable(string groupId) => StateFiles.IsUnreadable(FileOf(_groups, groupId));

    public void Delete(string groupId) => AtomicFile.Delete(FileOf(_groups, groupId));

    public Task AddMemberAsync(string snapshotId, string groupId, CancellationToken ct) =>
        AtomicFile.WriteAsync(FileOf(_members, snapshotId), System.Text.Encoding.UTF8.GetBytes(groupId), ct);

    public string? GroupOf(string snapshotId) => File.Exists(FileOf(_members, snapshotId)) ? File.ReadAllText(FileOf(_members, snapshotId)) : null;

    public void RemoveMember(string snapshotId) => AtomicFile.Delete(FileOf(_members, snapshotId));

    private static GroupSnapshotRecord? Read(string path) =>
        StateFiles.Read(path, b => GroupSnapshotRecord.Parser.ParseJson(System.Text.Encoding.UTF8.GetString(b)),
            r => r.GroupSnapshotId.Length > 0 && r.SnapshotIds.Count > 0);
}
