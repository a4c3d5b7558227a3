package qemuboot

import (
	"context"
	"strings"
	"testing"
)

// The probe's machinery works: under TCG, which always works, the firmware
// runs the probe script and qemu exits by itself. (That ProbeKVM agrees
// with a real boot is checked in TestProbeKVMAgreesWithBoot.)
func TestProbeTCG(t *testing.T) {
	if err := probe(context.Background(), "tcg", DefaultOVMFCode, DefaultOVMFVars); err != nil {
		t.Fatalf("probe under TCG: %v", err)
	}
}

// A firmware that does not boot to the shell never runs the probe script.
func TestProbeBadFirmware(t *testing.T) {
	err := probe(context.Background(), "tcg", "/nonexistent/OVMF_CODE.fd", DefaultOVMFVars)
	if err == nil || !strings.Contains(err.Error(), "qemu") {
		t.Fatalf("probe with no firmware: %v, want a qemu error", err)
	}
}
