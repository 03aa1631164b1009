using System.Text;

namespace SolarCsi.Node.Mounts;

/// <summary>Parses the kernel's mountinfo format (proc(5)); paths there escape space, tab, newline and '\' as octal.</summary>
public static class MountInfoParser
{
    public static IReadOnlyList<MountEntry> Parse(string text)
    {
        var entries = new List<MountEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            var dash = Array.IndexOf(fields, "-", 6);
            if (fields.Length < 10 || dash < 0 || fields.Length < dash + 3) continue;
            entries.Add(new MountEntry(
                int.Parse(fields[0]), int.Parse(fields[1]), fields[2], Unescape(fields[3]), Unescape(fields[4]),
                fields[5].Split(','), fields[dash + 1], Unescape(fields[dash + 2]),
                fields.Length > dash + 3 ? fields[dash + 3].Split(',') : []));
        }
        return entries;
    }

    public static string Unescape(string field)
    {
        if (!field.Contains('\\')) return field;
        var sb = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                sb.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(field[i]);
        }
        return sb.ToString();
    }

    private static bool IsOctal(string s, int start) =>
        start + 3 <= s.Length && s.Substring(start, 3).All(c => c is >= '0' and <= '7');
}
