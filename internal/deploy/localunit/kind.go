package localunit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/lockfile"
)

// Options configure a kind.
type Options struct {
	// StateDir is kiln's local state directory; units live under
	// StateDir/deployments.
	StateDir string
	// Exe is the program started as a unit's supervisor, with SuperviseArg
	// and the unit's directory; default this program (os.Executable),
	// which must call MaybeSupervise first thing.
	Exe string
	// ReadyTimeout bounds a unit's start: a VM's boot until its guest
	// agent says it is up, a process's ports; default 10 minutes.
	ReadyTimeout time.Duration
	// RestartBackoff is the first pause before a supervisor restarts a
	// unit that died; it doubles up to 30s. Default 1s.
	RestartBackoff time.Duration
	Log            *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// impl is what differs between VMs and processes.
type impl interface {
	kind() string
	// portNames are the unit's port names; fixed gives the host ports
	// the config fixes.
	portNames(u deploy.Unit) (names []string, fixed map[string]int)
	// settings describe u for plans: no secret's value.
	settings(u deploy.Unit, ports map[string]int) (map[string]string, error)
	// replaces reports whether going from prev to u makes the unit anew
	// (a VM on another image gets a fresh disk).
	replaces(prev meta, u deploy.Unit) bool
	// launch prepares the unit's files and says how to start it; fresh
	// makes a VM's disk anew.
	launch(ctx context.Context, u deploy.Unit, dir string, ports map[string]int, fresh bool) (launch, error)
	outputs(ports map[string]int) map[string]string
}

// kind implements deploy.UnitKind for an impl.
type kind struct {
	opts Options
	impl impl
}

var _ deploy.UnitKind = (*kind)(nil)

func (k *kind) dir(u deploy.Unit) string { return unitDir(k.opts.StateDir, u) }

func (k *kind) lock(ctx context.Context, u deploy.Unit) (func(), error) {
	if u.Deployment == "" || u.Name == "" || strings.ContainsAny(u.Deployment+u.Name, "/\x00") || u.Deployment[0] == '.' {
		return nil, cloud.Mark(fmt.Errorf("unit %q of deployment %q: not a valid name", u.Name, u.Deployment), cloud.ErrInvalid)
	}
	return lockfile.Lock(ctx, applyLock(k.opts.StateDir, u))
}

// observed is a unit as its files and processes show it.
type observed struct {
	meta      meta
	exists    bool
	state     state
	hasState  bool
	superPID  int
	status    deploy.UnitStatus
	supervise bool // a supervisor runs
}

func (k *kind) observe(u deploy.Unit) (observed, error) {
	dir := k.dir(u)
	var o observed
	var err error
	if o.meta, o.exists, err = readMeta(dir); err != nil {
		return o, err
	}
	if !o.exists {
		o.status = deploy.UnitStatus{State: deploy.UnitAbsent, Drift: []string{}}
		return o, nil
	}
	if o.superPID, err = supervisorPID(dir); err != nil {
		return o, err
	}
	if o.state, o.hasState, err = readState(dir); err != nil {
		return o, err
	}
	o.supervise = o.superPID != 0
	st := deploy.UnitStatus{Token: o.meta.Token, Outputs: maps.Clone(o.meta.Outputs), Drift: []string{}}
	if st.Outputs == nil {
		st.Outputs = map[string]string{}
	}
	if o.hasState {
		st.Token, st.Restarts, st.Problem = o.state.Token, o.state.Restarts, o.state.Problem
	}
	switch s := o.state.State; {
	case !o.hasState:
		st.State, st.Problem = deploy.UnitFailed, "never started (a deploy was interrupted before its start)"
	case o.supervise && s == stRunning:
		st.State = deploy.UnitRunning
		if !alive(o.state.Child) {
			st.State, st.Problem = deploy.UnitPending, "restarting"
		}
	case o.supervise:
		st.State = deploy.UnitPending
	case s == stStopped:
		st.State = deploy.UnitStopped
	case s == stExited || s == stFailed:
		st.State = deploy.UnitFailed
	default:
		st.State = deploy.UnitFailed
		st.Problem = fmt.Sprintf("its supervisor (pid %d) is gone, and with it the unit (state %s since %s)",
			o.state.Supervisor, s, o.state.Updated.Format(time.RFC3339))
	}
	for k, v := range u.Tags {
		if o.meta.Tags[k] != v && k != cloud.TagRelease {
			st.Drift = append(st.Drift, fmt.Sprintf("tag %s is %q, want %q", k, o.meta.Tags[k], v))
		}
	}
	slices.Sort(st.Drift)
	o.status = st
	return o, nil
}

// Status reads the unit's files and its supervisor's lock.
func (k *kind) Status(ctx context.Context, u deploy.Unit) (deploy.UnitStatus, error) {
	o, err := k.observe(u)
	if err != nil {
		return deploy.UnitStatus{}, fmt.Errorf("%s %s/%s: %w", k.impl.kind(), u.Deployment, u.Name, err)
	}
	return o.status, nil
}

// Plan compares the unit's recorded settings with u's.
func (k *kind) Plan(ctx context.Context, u deploy.Unit) (deploy.UnitPlan, error) {
	o, err := k.observe(u)
	if err != nil {
		return deploy.UnitPlan{}, err
	}
	ports := map[string]int{}
	names, fixed := k.impl.portNames(u)
	for _, n := range names {
		switch {
		case fixed[n] != 0:
			ports[n] = fixed[n]
		default:
			ports[n] = o.meta.Ports[n] // 0: a free port, found by Apply
		}
	}
	want, err := k.impl.settings(u, ports)
	if err != nil {
		return deploy.UnitPlan{}, err
	}
	p := deploy.UnitPlan{Changes: []string{}}
	switch {
	case !o.exists:
		p.Action = deploy.ActionCreate
		for _, key := range slices.Sorted(maps.Keys(want)) {
			p.Changes = append(p.Changes, fmt.Sprintf("%s: %s", key, want[key]))
		}
		return p, nil
	case o.status.Token == u.Token && o.status.State == deploy.UnitRunning:
		p.Action = deploy.ActionNone
		return p, nil
	case o.status.Token == u.Token:
		p.Action = deploy.ActionStart
		if o.status.Problem != "" {
			p.Changes = append(p.Changes, "start again: "+o.status.Problem)
		} else {
			p.Changes = append(p.Changes, "start: "+string(o.status.State))
		}
		return p, nil
	}
	p.Action = deploy.ActionUpdate
	if k.impl.replaces(o.meta, u) {
		p.Action = deploy.ActionReplace
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		old, ok := o.meta.Settings[key]
		switch {
		case !ok:
			p.Changes = append(p.Changes, fmt.Sprintf("%s: %s (new)", key, want[key]))
		case old != want[key]:
			p.Changes = append(p.Changes, fmt.Sprintf("%s: %s -> %s", key, old, want[key]))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(o.meta.Settings)) {
		if _, ok := want[key]; !ok {
			p.Changes = append(p.Changes, fmt.Sprintf("%s: %s (removed)", key, o.meta.Settings[key]))
		}
	}
	if len(p.Changes) == 0 {
		p.Changes = append(p.Changes, "restart: an input or a secret changed")
	}
	return p, nil
}

// Apply starts the unit at u, replacing a supervisor that runs it at
// another token.
func (k *kind) Apply(ctx context.Context, u deploy.Unit) (deploy.UnitStatus, error) {
	unlock, err := k.lock(ctx, u)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	defer unlock()
	o, err := k.observe(u)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	if o.status.State == deploy.UnitRunning && o.status.Token == u.Token {
		return o.status, nil
	}
	dir := k.dir(u)
	if o.supervise && o.state.Token == u.Token && (o.state.State == stStarting || o.state.State == stRunning) {
		// Started by an earlier Apply (a kiln killed while the unit
		// booted): wait for that one rather than start it over.
		if err := k.waitUp(ctx, dir, u.Token, nil); err != nil {
			return deploy.UnitStatus{}, fmt.Errorf("%s %s/%s: %w", k.impl.kind(), u.Deployment, u.Name, err)
		}
		return k.Status(ctx, u)
	}
	if o.supervise {
		if err := k.stopSupervisor(ctx, dir, o.superPID); err != nil {
			return deploy.UnitStatus{}, err
		}
	}
	ports, err := k.allocatePorts(u, o.meta.Ports)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	settings, err := k.impl.settings(u, ports)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	m := meta{
		Kind: k.impl.kind(), Project: u.Project, Deployment: u.Deployment, Unit: u.Name, Region: u.Region,
		Tags: maps.Clone(u.Tags), Token: u.Token, ImageID: u.Image.ID, Ports: ports,
		Settings: settings, Outputs: k.impl.outputs(ports), Created: o.meta.Created,
	}
	if m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return deploy.UnitStatus{}, err
	}
	// What the unit is, tagged, goes to disk before anything starts, so
	// that Resources finds whatever a crash leaves.
	if err := writeJSON(filepath.Join(dir, metaFile), m); err != nil {
		return deploy.UnitStatus{}, err
	}
	fresh := !o.exists || k.impl.replaces(o.meta, u)
	l, err := k.impl.launch(ctx, u, dir, ports, fresh)
	if err != nil {
		return deploy.UnitStatus{}, fmt.Errorf("%s %s/%s: %w", k.impl.kind(), u.Deployment, u.Name, err)
	}
	if err := k.spawn(ctx, dir, l); err != nil {
		return deploy.UnitStatus{}, fmt.Errorf("%s %s/%s: %w", k.impl.kind(), u.Deployment, u.Name, err)
	}
	return k.Status(ctx, u)
}

// SetRunning stops or starts the unit's supervisor.
func (k *kind) SetRunning(ctx context.Context, u deploy.Unit, running bool) error {
	unlock, err := k.lock(ctx, u)
	if err != nil {
		return err
	}
	defer unlock()
	o, err := k.observe(u)
	if err != nil {
		return err
	}
	if !o.exists {
		return cloud.Mark(fmt.Errorf("%s %s/%s does not exist", k.impl.kind(), u.Deployment, u.Name), cloud.ErrNotFound)
	}
	dir := k.dir(u)
	if !running {
		if o.supervise {
			return k.stopSupervisor(ctx, dir, o.superPID)
		}
		if o.hasState && o.state.State != stStopped {
			// Dead already (killed, or gave up): record that it is now
			// stopped on purpose.
			o.state.State, o.state.Child, o.state.Updated = stStopped, 0, time.Now().UTC()
			return writeJSON(filepath.Join(dir, stateFile), o.state)
		}
		return nil
	}
	if o.status.State == deploy.UnitRunning || o.status.State == deploy.UnitPending && o.supervise {
		return nil
	}
	if o.supervise {
		if err := k.stopSupervisor(ctx, dir, o.superPID); err != nil {
			return err
		}
	}
	l, err := k.impl.launch(ctx, u, dir, o.meta.Ports, false)
	if err != nil {
		return err
	}
	l.Token = o.meta.Token
	return k.spawn(ctx, dir, l)
}

// Destroy stops the unit and removes its directory.
func (k *kind) Destroy(ctx context.Context, u deploy.Unit) error {
	unlock, err := k.lock(ctx, u)
	if err != nil {
		return err
	}
	defer unlock()
	dir := k.dir(u)
	pid, err := supervisorPID(dir)
	if err != nil {
		return err
	}
	if pid != 0 {
		if err := k.stopSupervisor(ctx, dir, pid); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("destroy %s %s/%s: %w", k.impl.kind(), u.Deployment, u.Name, err)
	}
	os.Remove(filepath.Dir(dir)) // the deployment's directory, once empty
	return nil
}

// Resources lists the units of this kind whose unit.json matches.
func (k *kind) Resources(ctx context.Context, region string, tags map[string]string) ([]deploy.Resource, error) {
	root := filepath.Join(k.opts.StateDir, deploymentsDir)
	deps, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []deploy.Resource
	for _, d := range deps {
		units, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			continue // not a directory, or gone meanwhile
		}
		for _, e := range units {
			dir := filepath.Join(root, d.Name(), e.Name())
			m, ok, err := readMeta(dir)
			if err != nil {
				return nil, err
			}
			if !ok || m.Kind != k.impl.kind() || m.Region != region || !cloud.Match(m.Tags, tags) {
				continue
			}
			out = append(out, deploy.Resource{
				Type: k.impl.kind(), ID: m.Deployment + "/" + m.Unit, Region: m.Region,
				Tags: maps.Clone(m.Tags), Created: m.Created,
			})
		}
	}
	return out, nil
}

// allocatePorts gives every port of u a host port: the one the config
// fixes, the one it had, or a free one.
func (k *kind) allocatePorts(u deploy.Unit, had map[string]int) (map[string]int, error) {
	names, fixed := k.impl.portNames(u)
	ports := map[string]int{}
	for _, n := range names {
		switch {
		case fixed[n] != 0:
			ports[n] = fixed[n]
		case had[n] != 0:
			ports[n] = had[n]
		default:
			p, err := freePort()
			if err != nil {
				return nil, fmt.Errorf("port %s: %w", n, err)
			}
			ports[n] = p
		}
	}
	return ports, nil
}

// freePort asks the kernel for a free loopback port. Another program may
// take it before the unit binds it; the unit then fails to start and says
// so.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// supervisorEnv is the environment of supervisors and their units: the
// few variables programs expect, and nothing else of kiln's (no cloud
// credentials, no KILN_FAILPOINT).
func supervisorEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// spawn starts a supervisor for the unit in dir and waits until it
// reports the unit up at l.Token, or fails.
func (k *kind) spawn(ctx context.Context, dir string, l launch) error {
	exe := k.opts.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	l.ReadyTimeout, l.Backoff = k.opts.ReadyTimeout, k.opts.RestartBackoff
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	// Whatever state an earlier supervisor left would only confuse the
	// wait below.
	if err := os.Remove(filepath.Join(dir, stateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, supervisorLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, SuperviseArg, dir)
	cmd.Dir = dir
	cmd.Env = supervisorEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: no signal to kiln's terminal or process
	// group reaches it, and it outlives kiln.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // reaps it, should it end while kiln runs
	_, werr := stdin.Write(data)
	stdin.Close()
	if werr != nil {
		return fmt.Errorf("hand the unit to its supervisor: %w", werr)
	}
	k.opts.Log.Info("supervisor started", "unit", dir, "pid", cmd.Process.Pid)
	return k.waitUp(ctx, dir, l.Token, exited)
}

// waitUp waits until the unit's supervisor reports it up at token, or
// fails; exited, when not nil, closes when a supervisor this process
// started ends.
func (k *kind) waitUp(ctx context.Context, dir, token string, exited <-chan struct{}) error {
	deadline := time.NewTimer(k.opts.ReadyTimeout + time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st, ok, err := readState(dir)
		if err != nil {
			return err
		}
		if ok && st.Token == token {
			switch st.State {
			case stRunning:
				return nil
			case stFailed, stExited:
				return fmt.Errorf("did not start: %s (log: %s)", st.Problem, logTail(filepath.Join(dir, supervisorLog)))
			}
		}
		if exited == nil {
			// Not ours: watch its lock instead.
			if pid, err := supervisorPID(dir); err == nil && pid == 0 {
				if st, ok, _ := readState(dir); ok && st.Token == token && st.State == stRunning {
					return nil
				}
				return fmt.Errorf("its supervisor ended before the unit was up: %s", logTail(filepath.Join(dir, supervisorLog)))
			}
		}
		select {
		case <-exited:
			if st, ok, _ := readState(dir); ok && st.Token == token {
				switch st.State {
				case stRunning:
					return nil
				case stFailed, stExited:
					return fmt.Errorf("did not start: %s (log: %s)", st.Problem, logTail(filepath.Join(dir, supervisorLog)))
				}
			}
			return fmt.Errorf("its supervisor ended before the unit was up: %s", logTail(filepath.Join(dir, supervisorLog)))
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not up within %s; see %s", k.opts.ReadyTimeout, filepath.Join(dir, supervisorLog))
		case <-tick.C:
		}
	}
}

// stopSupervisor asks the supervisor to stop the unit (SIGTERM) and waits
// until it has, which takes up to the unit's stop timeout and a hard
// stop.
func (k *kind) stopSupervisor(ctx context.Context, dir string, pid int) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop supervisor %d: %w", pid, err)
	}
	k.opts.Log.Info("stopping unit", "unit", dir, "supervisor", pid)
	deadline := time.Now().Add(stopWait)
	for {
		held, err := supervisorPID(dir)
		if err != nil {
			return err
		}
		if held == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			// A supervisor that does not stop is killed with what it runs,
			// which would otherwise run on unwatched.
			if st, ok, _ := readState(dir); ok && st.Child > 0 {
				syscall.Kill(-st.Child, syscall.SIGKILL)
				syscall.Kill(st.Child, syscall.SIGKILL)
			}
			syscall.Kill(held, syscall.SIGKILL)
			k.opts.Log.Warn("supervisor did not stop; killed it and its unit", "unit", dir, "supervisor", held)
			deadline = time.Now().Add(stopWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stop supervisor %d: %w", pid, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopWait is how long a supervisor may take to stop its unit (the unit's
// stop timeout plus a hard stop) before it is killed.
const stopWait = 3 * time.Minute

// logTail returns the last lines of a log file, for error messages.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return path
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return path + ":\n" + strings.Join(lines, "\n")
}
