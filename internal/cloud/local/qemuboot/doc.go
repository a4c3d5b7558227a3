// Package qemuboot boots a disk image under qemu and reads the outcome of
// its boot tests from the serial console. It is the host side of the kiln
// guest agent that package debimage bakes into every image.
//
// Run packs the test scripts into a tar archive and hands it to the guest
// as the fw_cfg entry opt/kiln/test. The agent in the guest runs them after
// boot and prints one result line to the first serial port, which qemu
// writes to Spec.LogPath:
//
//	KILN-TEST-RESULT: PASS
//	KILN-TEST-RESULT: FAIL <test> <status>
//
// Run watches that log. Markers count only as whole lines (after removing
// carriage returns); a line with "Kernel panic" ends the boot as a kernel
// panic; a guest that powers off without a marker, or a boot that outlasts
// Spec.Timeout, fails with a reason saying so. A test that failed is a
// Result with Passed false and a nil error; an error means qemu could not
// run at all. Once the log has a verdict, Run stops qemu without waiting for
// the guest to power off: its writes went to a throwaway overlay.
//
// The machine is q35 with OVMF (the code read-only, a copy of the variable
// store in WorkDir), one virtio disk, no network, no display and
// -no-reboot, so that a guest's reboot or power-off ends qemu. The disk is
// never written: the guest writes to a qcow2 overlay in WorkDir backed by
// the disk, which qemu opens read-only. An overlay rather than
// -drive snapshot=on because its place is chosen (the caller's work
// directory, removed with it, instead of a hidden file in /var/tmp that a
// killed qemu leaves behind) and the guest's writes can be looked at after
// a failed test.
//
// Acceleration is KVM when it works and software emulation (TCG)
// otherwise. /dev/kvm can exist and still not work (a nested or
// paravirtual host without vmx/svm), so ProbeKVM has the firmware run a
// UEFI shell script under KVM and checks that it ran, instead of trusting the
// device file. A boot with KVM that stops on a KVM internal error is an
// error at once rather than a wait for the timeout.
package qemuboot
