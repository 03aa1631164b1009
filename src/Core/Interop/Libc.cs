using System.Runtime.InteropServices;

namespace SolarCsi.Core.Interop;

/// <summary>The few libc calls .NET does not expose: file descriptors on directories and devices, ioctl, signals.</summary>
public static partial class Libc
{
    public const int ReadOnly = 0, Directory = 0x10000, CloseOnExec = 0x80000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static unsafe partial int Ioctl(int fd, nuint request, void* argument);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    // pidfd_open(2) and pidfd_send_signal(2) have no glibc wrapper in Debian 12; their numbers are the same on x86_64
    // and arm64 (the unified table every architecture uses for syscalls added since Linux 5.1).
    private const long SysPidfdSendSignal = 424, SysPidfdOpen = 434;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall2(long number, long a, long b);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall4(long number, long a, long b, long c, long d);

    /// <summary>A descriptor naming the process that has <paramref name="pid"/> now; -1 when there is none.</summary>
    public static int PidfdOpen(int pid) => (int)Syscall2(SysPidfdOpen, pid, 0);

    public static int PidfdSendSignal(int pidfd, int signal) => (int)Syscall4(SysPidfdSendSignal, pidfd, signal, 0, 0);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollFd* fds, ulong count, int timeoutMs);

    /// <summary>Whether <paramref name="fd"/> is readable now (a pidfd is readable once its process has exited).</summary>
    public static unsafe bool Readable(int fd)
    {
        var poll = new PollFd { Fd = fd, Events = 1 /* POLLIN */ };
        return Poll(&poll, 1, 0) > 0 && (poll.Revents & 1) != 0;
    }
}
