// Package debimage builds bootable Debian disk images for kiln's local
// backend, without loop devices or a running VM; the disk is written as a
// file, never mounted.
//
// A build has three parts, all inside Spec.WorkDir:
//
//  1. Base. mmdebstrap bootstraps a minbase root filesystem with what booting
//     needs (kernel, systemd, udev) plus the recipe's packages and the kiln
//     guest agent into Spec.CacheDir, named by CacheKey: as root a directory
//     (bootstrapped in the work directory, synced with syncfs and renamed
//     into the cache), in unshare mode a tarball (written under a temporary
//     name and renamed). Either is built under a per-key lock, so a killed
//     build never leaves half an entry and two builds never bootstrap the
//     same key at once. Before the kernel is installed, essential hooks
//     configure initramfs-tools for a small initrd (MODULES=list and a hook
//     adding the root disk's drivers for qemu, EC2, VMware, VirtualBox and
//     Hyper-V): Debian's MODULES=most initrd is 36 MB, which under software
//     emulation costs about four seconds of every boot and, made in the
//     bootstrap, most of a minute. minbase rather than apt: provisioning scripts
//     expect what a debootstrapped system has (every Priority: required
//     package), and the difference in size and time is a few seconds next
//     to the kernel and systemd. dpkg runs with force-unsafe-io, since
//     nothing is durable before the builder syncs it anyway; the option is
//     removed from the image by the last hook.
//
//  2. Provisioning. A second mmdebstrap run of variant custom starts from the
//     cached base (no bootstrap, no apt update) and runs one customize hook
//     per recipe step, so mmdebstrap sets up /proc, /dev and /sys and the
//     same hooks work as root and in unshare mode. As root its target is an
//     overlay mount at WorkDir/rootfs: the base directory, read-only, under
//     an upper layer in the work directory that takes the steps' changes,
//     so the base is neither copied nor changed (where overlayfs cannot be
//     mounted, the target is a copy of the base). In unshare mode a tar-in
//     setup hook unpacks the base tarball and the result is a tarball,
//     rootfs.tar. Shell steps run in the chroot with sh -e (or the
//     script's own #! line); file steps copy a file or directory in and set
//     mode and owner inside the chroot, so symbolic links resolve in the
//     image, never on the host; ansible steps run ansible-playbook with the
//     community.general.chroot connection. Each step's hook prints begin
//     and end lines carrying a random nonce, which is how a failure becomes
//     a *StepError with the step's label, exit status and last lines of
//     output.
//
//  3. Disk. A sparse raw file gets a GPT written by sfdisk (EFI system
//     partition of 260 MiB, then a Linux filesystem partition for the rest),
//     with disk and partition UUIDs derived from the build's inputs so the same
//     input gives the same layout. mkfs.ext4 -d writes the root filesystem
//     straight into its partition (-E offset) from the overlay; mkfs.vfat
//     --offset and mtools fill the ESP with systemd-boot as
//     EFI/BOOT/BOOTX64.EFI, one loader entry (root=PARTUUID=... rw
//     console=tty0 console=ttyS0,115200 no_timer_check) and the kernel and
//     initrd from the root filesystem. /etc/fstab is written by a hook
//     before the recipe's steps, so steps may add to it. The disk's
//     writeback starts at once (it is synced when imported); qemu-img makes
//     the exports meanwhile.
//
// In unshare mode mkfs.ext4 needs a directory too (before e2fsprogs 1.47.1
// it cannot read a tarball with -d), so the tarball is unpacked first, in a
// user namespace mapped like mmdebstrap's unshare mode, so owners stay
// right. /dev is left empty in the image: the kernel mounts devtmpfs there.
//
// # Modes
//
// As root, mmdebstrap runs in root mode. As a normal user it runs in unshare
// mode, which needs unprivileged user namespaces, the uidmap package and
// entries for the user in /etc/subuid and /etc/subgid. In unshare mode the
// hooks run as root of a user namespace that cannot read the user's private
// files, so a recipe's ansible playbook (read in place by ansible-playbook)
// must be world-readable; scripts and files are copied in through
// mmdebstrap's special hooks and need nothing extra.
//
// # The kiln guest agent
//
// Every image carries a small systemd service, kiln-agent.service, and its
// script /usr/lib/kiln/kiln-agent. At boot, after multi-user.target, it loads
// qemu_fw_cfg and looks for the fw_cfg entry opt/kiln/test
// (/sys/firmware/qemu_fw_cfg/by_name/opt/kiln/test/raw). When the entry is
// absent, which is every boot outside a kiln boot test, it exits at once and
// changes nothing. When present, the entry is a tar archive with
//
//	order      test names, one a line, in the order to run them
//	timeout    the per-test limit in seconds
//	tests/*    the test scripts
//
// The agent unpacks it into a fresh tmpfs, runs the tests one by one with
// timeout(1), stops at the first failure, and prints the tests' output and
// then exactly one result line to the console:
//
//	KILN-TEST-RESULT: PASS
//	KILN-TEST-RESULT: FAIL <test> <status>
//
// where status is the exit status, "timeout" when the per-test limit passed,
// or a word naming what the agent itself could not do. Then it powers the
// machine off (poweroff -f). The console is /dev/console, which the loader
// entry's last console= makes the first serial port (ttyS0): writing to
// /dev/ttyS0 directly loses everything after the serial getty starts, since
// agetty hangs the device up under all its open files, while files opened
// as /dev/console survive that. It plays the part user data plays on AWS; package
// qemuboot is the host side. The unit's description never contains the
// marker text, because systemd echoes descriptions to the console.
//
// Besides the recipe's packages every image gets what booting and the
// agent need (a kernel, systemd, udev, kmod) and dbus, without which
// systemd-logind does not run and the machine ignores the ACPI power
// button that asks a deployment's VM to shut down.
//
// In a deployment's VM (package localunit) kiln hands the guest the entry
// opt/kiln/ready instead, and the agent prints the line KILN-READY to the
// console once the machine is up (after multi-user.target), which is how
// kiln knows the boot finished. The deployment's inputs reach the guest as
// the entry opt/kiln/inputs, a JSON object of names and values that guest
// software reads as root from
// /sys/firmware/qemu_fw_cfg/by_name/opt/kiln/inputs/raw.
//
// # The build's environment
//
// Shell steps run with the recipe's variables (Spec.Vars) in their
// environment, read from a file only the build reads; the caller adds the
// release's KILN_USE_CASE, KILN_ARCH, KILN_VERSION and KILN_ASSET_ID
// (cloud.BuildInput.StepVars), so that an image can know what it is, e.g.
// answer its version.
package debimage
