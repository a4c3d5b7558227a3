package debimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// systemdBoot is the boot loader put on the ESP, from the build host's
// systemd-boot-efi package.
const systemdBoot = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"

// writeESP makes the FAT32 filesystem in the ESP and fills it: systemd-boot
// as the removable-media loader EFI/BOOT/BOOTX64.EFI (no NVRAM entry
// needed), a loader entry booting kernel with the root by PARTUUID, and the
// kernel and initrd from bootDir.
func (b *builder) writeESP(ctx context.Context, disk string, esp gptPartition, l layout, bootDir, kernel string) error {
	if strings.Contains(disk, "@@") {
		// mtools reads "@@" as the offset separator.
		return fmt.Errorf("disk path %q: must not contain @@", disk)
	}
	_, err := run(ctx, b.log, command{name: "mkfs.vfat", args: []string{
		"-F", "32", "-n", "ESP", "-i", l.espVolumeID,
		"--offset", strconv.FormatInt(esp.start/sectorSize, 10),
		disk, strconv.FormatInt(esp.size/1024, 10),
	}})
	if err != nil {
		return fmt.Errorf("make ESP filesystem: %w", err)
	}

	confDir := filepath.Join(b.s.WorkDir, "esp")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return err
	}
	loaderConf := filepath.Join(confDir, "loader.conf")
	entry := filepath.Join(confDir, "kiln.conf")
	// editor no: nobody at the console may change the kernel command line.
	if err := os.WriteFile(loaderConf, []byte("default kiln.conf\ntimeout 0\neditor no\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(entry, []byte(l.loaderEntry(kernel)), 0o644); err != nil {
		return err
	}

	img := disk + "@@" + strconv.FormatInt(esp.start, 10)
	mtools := func(name string, args ...string) error {
		_, err := run(ctx, b.log, command{
			name: name, args: append([]string{"-i", img}, args...),
			env: []string{"MTOOLS_SKIP_CHECK=1"},
		})
		return err
	}
	if err := mtools("mmd", "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"); err != nil {
		return fmt.Errorf("fill ESP: %w", err)
	}
	copies := [][2]string{
		{systemdBoot, "::/EFI/BOOT/BOOTX64.EFI"},
		{loaderConf, "::/loader/loader.conf"},
		{entry, "::/loader/entries/kiln.conf"},
		{filepath.Join(bootDir, "vmlinuz-"+kernel), "::/vmlinuz-" + kernel},
		{filepath.Join(bootDir, "initrd.img-"+kernel), "::/initrd.img-" + kernel},
	}
	for _, c := range copies {
		if err := mtools("mcopy", c[0], c[1]); err != nil {
			return fmt.Errorf("fill ESP: %w", err)
		}
	}
	return nil
}

// loaderEntry is the systemd-boot entry for kernel. The console is the
// first serial port (where boot tests read) and the screen, if any.
// no_timer_check: under software emulation on a busy host the kernel's
// check of the IO-APIC timer can fail and panic ("IO-APIC + timer doesn't
// work!"); virtual machines, which these images are for, do not need it.
func (l layout) loaderEntry(kernel string) string {
	return fmt.Sprintf(`title Debian GNU/Linux (kiln)
linux /vmlinuz-%[1]s
initrd /initrd.img-%[1]s
options root=PARTUUID=%[2]s rw console=tty0 console=ttyS0,115200 no_timer_check
`, kernel, strings.ToLower(l.rootUUID))
}
