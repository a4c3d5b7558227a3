package localunit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SuperviseArg is the first argument that makes kiln's binary a unit's
// supervisor (see MaybeSupervise).
const SuperviseArg = "__kiln-supervise"

// Restart limits: a unit that dies is started again after backoff, which
// doubles from restartMin to restartMax, and at most restartBurst times in
// restartWindow.
const (
	restartMin    = time.Second
	restartMax    = 30 * time.Second
	restartBurst  = 5
	restartWindow = 10 * time.Minute
	// readyPoll is how often a starting unit is looked at.
	readyPoll = 250 * time.Millisecond
	// hardStopGrace is how long a VM gets after QMP quit before SIGKILL.
	hardStopGrace = 5 * time.Second
)

// MaybeSupervise runs this process as a unit's supervisor, and exits,
// when its arguments say so; otherwise it returns at once. Call it first
// thing in main, and in TestMain of tests whose kinds start supervisors.
func MaybeSupervise() {
	if len(os.Args) > 2 && os.Args[1] == SuperviseArg {
		os.Exit(supervise(os.Args[2]))
	}
}

// launch is what kiln hands a supervisor on its standard input.
type launch struct {
	Kind         string        `json:"kind"`
	Token        string        `json:"token"`
	Restart      string        `json:"restart"`
	StopTimeout  time.Duration `json:"stop_timeout"`
	ReadyTimeout time.Duration `json:"ready_timeout"`
	Argv         []string      `json:"argv"`
	Env          []string      `json:"env"`
	WorkDir      string        `json:"work_dir"`
	// Ports are loopback ports a process must accept connections on to
	// be up.
	Ports []int `json:"ports"`
	// Inputs are handed to a VM's qemu as descriptor 3 (fw_cfg entry
	// opt/kiln/inputs) at every start.
	Inputs []byte `json:"inputs,omitempty"`
	// Backoff is the first pause before a restart; default restartMin.
	Backoff time.Duration `json:"backoff,omitempty"`
}

// supervisor runs one unit.
type supervisor struct {
	dir string
	l   launch
	log *slog.Logger
	st  state
}

// supervise is the supervisor's main function; it returns the exit code.
func supervise(dir string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("unit", dir)
	var l launch
	if err := json.NewDecoder(io.LimitReader(os.Stdin, 16<<20)).Decode(&l); err != nil {
		log.Error("read launch description", "err", err)
		return 2
	}
	os.Stdin.Close()
	lock, ok, err := takeSupervisorLock(dir)
	if err != nil {
		log.Error("supervisor lock", "err", err)
		return 2
	}
	if !ok {
		log.Info("another supervisor runs this unit; leaving it alone")
		return 0
	}
	defer lock.Close()
	s := &supervisor{dir: dir, l: l, log: log, st: state{Token: l.Token, Supervisor: os.Getpid()}}
	return s.run()
}

func (s *supervisor) write(st string) {
	s.st.State = st
	s.st.Updated = time.Now().UTC()
	if err := writeJSON(filepath.Join(s.dir, stateFile), s.st); err != nil {
		s.log.Error("write state", "err", err)
	}
}

func (s *supervisor) run() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP)
	first := restartMin
	if s.l.Backoff > 0 {
		first = s.l.Backoff
	}
	backoff := first
	var restarts []time.Time
	for {
		s.st.Child, s.st.Started = 0, time.Time{}
		s.write(stStarting)
		c, err := s.start()
		if err != nil {
			s.st.Problem = err.Error()
			s.write(stFailed)
			s.log.Error("start", "err", err)
			return 1
		}
		s.st.Child, s.st.Started = c.pid(), time.Now().UTC()
		s.write(stStarting)
		s.log.Info("started", "pid", c.pid())
		ready := make(chan error, 1)
		readyCtx, cancelReady := context.WithTimeout(context.Background(), s.l.ReadyTimeout)
		go func() { ready <- s.ready(readyCtx, c) }()

		var exit error
	wait:
		for {
			select {
			case err := <-ready:
				if err == nil {
					s.write(stRunning)
					s.log.Info("up")
					backoff = first
					continue
				}
				if c.done() {
					continue // the exit explains it
				}
				cancelReady()
				s.st.Problem = "not up: " + err.Error()
				s.log.Error("not up", "err", err)
				s.stop(c)
				s.write(stFailed)
				return 1
			case exit = <-c.exited:
				break wait
			case sig := <-sigs:
				cancelReady()
				s.log.Info("stopping", "signal", sig)
				s.write(stStopping)
				s.stop(c)
				s.st.Child = 0
				s.st.Problem = ""
				s.write(stStopped)
				return 0
			}
		}
		cancelReady()
		now := time.Now().UTC()
		s.st.LastExit, s.st.LastExitAt, s.st.Child = describeExit(exit, c.tail()), now, 0
		what := "the VM"
		if s.l.Kind == "process" {
			what = "the process"
		}
		clean := exit == nil
		switch {
		case clean || s.l.Restart == "never":
			policy := "a clean exit is not restarted"
			if !clean {
				policy = "restart is never"
			}
			s.st.Problem = fmt.Sprintf("%s ended by itself (%s) at %s; %s", what, s.st.LastExit, now.Format(time.RFC3339), policy)
			s.write(stExited)
			s.log.Warn("ended", "exit", s.st.LastExit)
			return 0
		}
		restarts = append(restarts, now)
		for len(restarts) > 0 && now.Sub(restarts[0]) > restartWindow {
			restarts = restarts[1:]
		}
		if len(restarts) > restartBurst {
			s.st.Problem = fmt.Sprintf("%s died %d times within %s (last: %s at %s); not restarted again",
				what, len(restarts), restartWindow, s.st.LastExit, now.Format(time.RFC3339))
			s.write(stFailed)
			s.log.Error("giving up", "restarts", len(restarts))
			return 1
		}
		s.st.Restarts++
		s.st.Problem = fmt.Sprintf("%s died (%s) at %s and was restarted (%d restarts)", what, s.st.LastExit, now.Format(time.RFC3339), s.st.Restarts)
		s.log.Warn("died; restarting", "exit", s.st.LastExit, "in", backoff)
		s.write(stStarting)
		select {
		case <-time.After(backoff):
		case <-sigs:
			s.st.Problem = ""
			s.write(stStopped)
			return 0
		}
		backoff = min(2*backoff, restartMax)
	}
}

// describeExit says how a child ended, with the last of its error output
// when it failed.
func describeExit(err error, tail string) string {
	if err == nil {
		return "exit status 0"
	}
	msg := err.Error()
	if tail = strings.TrimSpace(tail); tail != "" {
		if i := strings.LastIndexByte(tail, '\n'); i >= 0 {
			tail = tail[i+1:]
		}
		msg += ": " + tail
	}
	return msg
}

// child is a started VM or process.
type child struct {
	cmd    *exec.Cmd
	exited chan error // receives the Wait result once
	mu     sync.Mutex
	ended  bool
	errs   *tailBuffer
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

func (c *child) tail() string { return c.errs.String() }

// start starts the unit's VM or process.
func (s *supervisor) start() (*child, error) {
	if len(s.l.Argv) == 0 {
		return nil, errors.New("nothing to run")
	}
	cmd := exec.Command(s.l.Argv[0], s.l.Argv[1:]...)
	cmd.Env = s.l.Env
	cmd.Dir = s.l.WorkDir
	// Its own process group, so that stopping a process stops what it
	// started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errs := &tailBuffer{max: 4 << 10}
	switch s.l.Kind {
	case "vm":
		cmd.Dir = s.dir // qemu's QMP socket is relative: unix socket paths are short
		// Keep the previous boot's console for a look after a crash.
		os.Rename(filepath.Join(s.dir, consoleLog), filepath.Join(s.dir, consoleLog+".1"))
		os.Remove(filepath.Join(s.dir, qmpSocket))
		cmd.Stdout, cmd.Stderr = io.MultiWriter(os.Stderr, errs), io.MultiWriter(os.Stderr, errs)
		if len(s.l.Inputs) > 0 {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			cmd.ExtraFiles = []*os.File{r}
			defer r.Close()
			go func() {
				w.Write(s.l.Inputs)
				w.Close()
			}()
		}
	default:
		out, err := os.OpenFile(filepath.Join(s.dir, outputLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		defer out.Close()
		cmd.Stdout, cmd.Stderr = out, io.MultiWriter(out, errs)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.l.Argv[0], err)
	}
	c := &child{cmd: cmd, exited: make(chan error, 1), errs: errs}
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		c.ended = true
		c.mu.Unlock()
		c.exited <- err
	}()
	return c, nil
}

// ready waits until the unit is up: a VM's guest agent printed KILN-READY
// on the console, a process's ports accept connections.
func (s *supervisor) ready(ctx context.Context, c *child) error {
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	var con consoleReader
	for {
		if c.done() {
			return errors.New("it exited while starting")
		}
		switch s.l.Kind {
		case "vm":
			if con.find(filepath.Join(s.dir, consoleLog), readyMarker) {
				return nil
			}
		default:
			if s.portsOpen() {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if s.l.Kind == "vm" {
				return fmt.Errorf("the guest did not print %s on its console within %s (is kiln's guest agent in the image? see %s)",
					readyMarker, s.l.ReadyTimeout, filepath.Join(s.dir, consoleLog))
			}
			return fmt.Errorf("ports %v did not accept connections within %s (see %s)", s.l.Ports, s.l.ReadyTimeout, filepath.Join(s.dir, outputLog))
		case <-tick.C:
		}
	}
}

func (s *supervisor) portsOpen() bool {
	for _, p := range s.l.Ports {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), time.Second)
		if err != nil {
			return false
		}
		conn.Close()
	}
	return true
}

// stop ends the child: cleanly first, within the stop timeout, then hard.
func (s *supervisor) stop(c *child) {
	wait := func(d time.Duration) bool {
		select {
		case <-c.exited:
			return true
		case <-time.After(d):
			return false
		}
	}
	if c.done() {
		select {
		case <-c.exited:
		default:
		}
		return
	}
	pgid := -c.pid()
	switch s.l.Kind {
	case "vm":
		if err := qmp(filepath.Join(s.dir, qmpSocket), "system_powerdown"); err != nil {
			s.log.Warn("QMP system_powerdown", "err", err)
		} else if wait(s.l.StopTimeout) {
			s.log.Info("the guest shut down")
			return
		}
		s.log.Warn("the guest did not shut down in time; quitting qemu", "timeout", s.l.StopTimeout)
		if err := qmp(filepath.Join(s.dir, qmpSocket), "quit"); err == nil && wait(hardStopGrace) {
			return
		}
	default:
		syscall.Kill(pgid, syscall.SIGTERM)
		if wait(s.l.StopTimeout) {
			syscall.Kill(pgid, syscall.SIGKILL) // what it left of its group
			return
		}
		s.log.Warn("the process did not exit in time; killing it", "timeout", s.l.StopTimeout)
	}
	syscall.Kill(pgid, syscall.SIGKILL)
	<-c.exited
}

// readyMarker is the line kiln's guest agent prints on a deployment VM's
// console once the machine is up.
const readyMarker = "KILN-READY"

// consoleReader finds a whole line in a growing console log.
type consoleReader struct {
	off     int64
	partial []byte
}

func (r *consoleReader) find(path, line string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < r.off {
		r.off, r.partial = 0, nil // a new boot's log
	}
	if _, err := f.Seek(r.off, io.SeekStart); err != nil {
		return false
	}
	data, _ := io.ReadAll(io.LimitReader(f, 16<<20))
	r.off += int64(len(data))
	data = append(r.partial, data...)
	last := bytes.LastIndexByte(data, '\n')
	if last < 0 {
		if len(data) > 64<<10 {
			data = data[len(data)-64<<10:] // a line that long is not the marker
		}
		r.partial = data
		return false
	}
	r.partial = bytes.Clone(data[last+1:])
	for _, l := range bytes.Split(data[:last], []byte{'\n'}) {
		if string(bytes.ReplaceAll(l, []byte{'\r'}, nil)) == line {
			return true
		}
	}
	return false
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
