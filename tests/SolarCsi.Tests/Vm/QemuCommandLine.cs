using System.Globalization;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// The qemu arguments for the test guest. TCG, because KVM does not work on the CI machine kind. No network device
/// (-nic none -nodefaults): the guest reaches the host only through the 9p shares and the virtio-serial port.
/// </summary>
public static class QemuCommandLine
{
    public static IReadOnlyList<string> Build(VmAssets assets, VmOptions options, string dir, string workDir, string socket)
    {
        var inv = CultureInfo.InvariantCulture;
        List<string> args =
        [
            "-accel", "tcg", "-cpu", "max", "-smp", options.Cpus.ToString(inv),
            "-nodefaults", "-nic", "none", "-display", "none", "-monitor", "none", "-no-reboot",
            "-serial", "file:" + Path.Combine(dir, "console.log"),
            "-kernel", assets.Kernel, "-initrd", assets.Initramfs,
            "-append", $"console=ttyS0 panic=-1 quiet loglevel=4 vmagent={assets.Agent} vmwork={workDir}",
            // The host root read-only (the guest puts a tmpfs overlay on it), the modules, and a read-write share for results.
            "-fsdev", "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=root,mount_tag=hostroot",
            "-fsdev", $"local,id=mods,path={assets.Modules},security_model=none,readonly=on",
            "-device", "virtio-9p-pci,fsdev=mods,mount_tag=mods",
            "-fsdev", $"local,id=work,path={workDir},security_model=none",
            "-device", "virtio-9p-pci,fsdev=work,mount_tag=work",
            "-device", "virtio-serial-pci",
            "-chardev", $"socket,id=ctl,path={socket},server=on,wait=off",
            "-device", "virtserialport,chardev=ctl,name=ctl",
        ];
        foreach (var port in options.Ports)
            args.AddRange(["-chardev", $"socket,id=port-{port},path={PortSocket(dir, port)},server=on,wait=off",
                "-device", $"virtserialport,chardev=port-{port},name={port}"]);
        if (options.NvdimmBytes > 0)
        {
            // A file-backed NVDIMM with a label area, so ndctl can carve named namespaces as on a real node.
            args.AddRange(["-machine", "pc,nvdimm=on", "-m", $"{options.MemoryMiB}M,slots=2,maxmem={options.MemoryMiB * 4L + options.NvdimmBytes / (1 << 20)}M",
                "-object", $"memory-backend-file,id=nv0,share=on,mem-path={Path.Combine(dir, "nvdimm.img")},size={options.NvdimmBytes}",
                "-device", "nvdimm,id=nvdimm0,memdev=nv0,label-size=128K"]);
        }
        else
        {
            args.AddRange(["-machine", "pc", "-m", $"{options.MemoryMiB}M"]);
        }
        if (options.DiskBytes > 0)
        {
            // serial= names it in /sys/block/vdX/serial; cache=unsafe: the disk is thrown away with the guest.
            args.AddRange(["-drive", $"if=none,id=disk0,file={Path.Combine(dir, "disk0.img")},format=raw,cache=unsafe",
                "-device", $"virtio-blk-pci,drive=disk0,serial={DiskSerial}"]);
        }
        return args;
    }

    public const string DiskSerial = "solar-disk0";

    public static string PortSocket(string dir, string port) => Path.Combine(dir, $"port-{port}.sock");
}
