package localunit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/kiln-images/kiln/internal/cloud/local/qemuboot"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
)

// Disks gives the raw disk file of a local image (the local backend's
// DiskFile).
type Disks interface {
	DiskFile(ctx context.Context, region, id, format string) (string, error)
}

// NewVM returns the kind of qemu VM units: images from disks, booted
// through a copy-on-write overlay, with accel "auto" (KVM when it works
// here, probed once), "kvm" or "tcg".
func NewVM(o Options, disks Disks, accel string) deploy.UnitKind {
	return &kind{opts: o.withDefaults(), impl: &vmImpl{disks: disks, accel: accel}}
}

type vmImpl struct {
	disks Disks
	accel string
	once  sync.Once
}

func (*vmImpl) kind() string { return config.UnitVM }

func vmOf(u deploy.Unit) (*config.VMUnit, error) {
	if u.Config == nil || u.Config.VM == nil {
		return nil, fmt.Errorf("unit %s is not a vm unit", u.Name)
	}
	return u.Config.VM, nil
}

func (*vmImpl) portNames(u deploy.Unit) ([]string, map[string]int) {
	v, err := vmOf(u)
	if err != nil {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(v.Ports)), v.HostPorts
}

// replaces: a VM on another image starts from a fresh overlay; its old
// disk's changes are gone.
func (*vmImpl) replaces(prev meta, u deploy.Unit) bool { return prev.ImageID != u.Image.ID }

func (*vmImpl) outputs(ports map[string]int) map[string]string {
	out := map[string]string{"host": "127.0.0.1"}
	for n, p := range ports {
		out["port."+n] = strconv.Itoa(p)
		out["url."+n] = "http://127.0.0.1:" + strconv.Itoa(p)
	}
	return out
}

func (*vmImpl) settings(u deploy.Unit, ports map[string]int) (map[string]string, error) {
	v, err := vmOf(u)
	if err != nil {
		return nil, err
	}
	out := map[string]string{
		"image":        u.Image.ID + " (" + u.Image.Name + ")",
		"memory":       v.Memory.String(),
		"cpus":         strconv.Itoa(v.CPUs),
		"restart":      v.Restart,
		"stop_timeout": v.StopTimeout.String(),
	}
	for n, guest := range v.Ports {
		host := "a free port"
		if p := ports[n]; p != 0 {
			host = strconv.Itoa(p)
		}
		out["port."+n] = fmt.Sprintf("127.0.0.1:%s -> guest %d", host, guest)
	}
	for n, in := range u.Inputs {
		out["input."+n] = in.String()
	}
	return out, nil
}

func (m *vmImpl) resolveAccel(ctx context.Context) string {
	m.once.Do(func() { m.accel = qemuboot.ResolveAccel(ctx, m.accel) })
	return m.accel
}

func (m *vmImpl) launch(ctx context.Context, u deploy.Unit, dir string, ports map[string]int, fresh bool) (launch, error) {
	v, err := vmOf(u)
	if err != nil {
		return launch{}, err
	}
	disk, err := m.disks.DiskFile(ctx, u.Region, u.Image.ID, "raw")
	if err != nil {
		return launch{}, fmt.Errorf("image %s: %w", u.Image.ID, err)
	}
	mach := qemuboot.Machine{
		Name: "kiln-" + u.Deployment + "-" + u.Name, Disk: disk, WorkDir: dir,
		LogPath: dir + "/" + consoleLog, Accel: m.resolveAccel(ctx),
		Memory: int(v.Memory.Bytes() >> 20), CPUs: v.CPUs,
	}
	args, err := mach.Prepare(ctx, fresh)
	if err != nil {
		return launch{}, err
	}
	// User networking with each port forwarded from loopback; no option
	// ROM, so the firmware never tries a network boot.
	netdev := "user,id=net0"
	for _, n := range slices.Sorted(maps.Keys(v.Ports)) {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", ports[n], v.Ports[n])
	}
	args = append(args,
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,romfile=",
		"-qmp", "unix:"+qmpSocket+",server=on,wait=off",
		"-fw_cfg", "name=opt/kiln/ready,string=1",
	)
	var inputs []byte
	if len(u.Inputs) > 0 {
		vals := map[string]string{}
		for n, in := range u.Inputs {
			vals[n] = in.Text
		}
		if inputs, err = json.Marshal(vals); err != nil {
			return launch{}, err
		}
		// Descriptor 3 is a pipe the supervisor fills at every start:
		// the values never touch the disk or qemu's command line.
		args = append(args, "-fw_cfg", "name=opt/kiln/inputs,file=/dev/fd/3")
	}
	return launch{
		Kind: config.UnitVM, Token: u.Token, Restart: v.Restart, StopTimeout: v.StopTimeout.Std(),
		Argv: append([]string{"qemu-system-x86_64"}, args...), Env: supervisorEnv(), WorkDir: dir,
		Inputs: inputs,
	}, nil
}
