using System.Runtime.InteropServices;

namespace SolarCsi.Core.Validation;

/// <summary>realpath(3) of the longest existing prefix of a path, with the rest appended unchanged.</summary>
public static partial class RealPath
{
    public static string OfExistingPrefix(string path)
    {
        var existing = path;
        var rest = new Stack<string>();
        while (existing.Length > 1 && !Path.Exists(existing) && !IsLink(existing))
        {
            rest.Push(Path.GetFileName(existing));
            existing = Path.GetDirectoryName(existing) ?? "/";
        }
        // A dangling link has no realpath: judge it by where it would lead.
        var resolved = Resolve(existing) ?? (IsLink(existing) ? new FileInfo(existing).ResolveLinkTarget(returnFinalTarget: true)?.FullName : null) ?? existing;
        foreach (var part in rest) resolved = Path.Combine(resolved, part);
        return resolved;
    }

    private static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;

    private static string? Resolve(string path)
    {
        var result = RealPathNative(path, IntPtr.Zero);
        if (result == IntPtr.Zero) return null;
        try { return Marshal.PtrToStringUTF8(result); }
        finally { Free(result); }
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr RealPathNative(string path, IntPtr resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(IntPtr pointer);
}
