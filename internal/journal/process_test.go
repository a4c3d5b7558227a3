package journal

// Tests in this file run the test binary itself as child processes (the
// helper-process pattern): TestMain turns it into a journal writer when
// helperEnv is set.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "KILN_JOURNAL_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := writer(); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writer is the child process. It opens the journal named by
// KILN_JOURNAL_PATH, starts run KILN_JOURNAL_RUN, and when KILN_JOURNAL_WAIT
// is set prints "ready" and waits for a line on stdin. Then it makes
// KILN_JOURNAL_N steps (0: until killed), named KILN_JOURNAL_NAME-i, printing
// "begin ID NAME" when Begin has returned and "end ID NAME" when End has. Odd steps
// fail. KILN_JOURNAL_PAUSE, if set, is the longest random pause between steps.
func writer() error {
	ctx := context.Background()
	path, run, name := os.Getenv("KILN_JOURNAL_PATH"), os.Getenv("KILN_JOURNAL_RUN"), os.Getenv("KILN_JOURNAL_NAME")
	n, err := strconv.Atoi(os.Getenv("KILN_JOURNAL_N"))
	if err != nil {
		return err
	}
	j, err := Open(path)
	if err != nil {
		return err
	}
	defer j.Close()
	if err := j.StartRun(ctx, Run{ID: run, UseCase: "test"}); err != nil {
		return err
	}
	var pause time.Duration
	if v := os.Getenv("KILN_JOURNAL_PAUSE"); v != "" {
		if pause, err = time.ParseDuration(v); err != nil {
			return err
		}
	}
	if os.Getenv("KILN_JOURNAL_WAIT") != "" {
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fmt.Errorf("wait for go: %w", err)
		}
	}
	for i := 0; n == 0 || i < n; i++ {
		step := fmt.Sprintf("%s-%d", name, i)
		id, err := j.Begin(ctx, run, "replicate", step, "r", "detail")
		if err != nil {
			return err
		}
		fmt.Println("begin", id, step)
		var stepErr error
		if i%2 == 1 {
			stepErr = errors.New("odd step")
		}
		if err := j.End(ctx, id, fmt.Sprint("res-", id), stepErr); err != nil {
			return err
		}
		fmt.Println("end", id, step)
		if pause > 0 {
			time.Sleep(rand.N(pause))
		}
	}
	return nil
}

// child is a running writer process.
type child struct {
	cmd    *exec.Cmd
	stdin  *os.File
	out    *lines
	stderr bytes.Buffer
	done   chan struct{} // closed when it has exited and err is set
	err    error         // from cmd.Wait
}

// waitFirstLine waits until the child printed something. It fails the test
// if the child exits first or prints nothing for 30 seconds.
func (c *child) waitFirstLine(t *testing.T) {
	t.Helper()
	select {
	case <-c.out.first:
	case <-c.done:
		t.Fatalf("writer exited before printing anything: %v; stderr: %s", c.err, &c.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("writer printed nothing in 30s; stderr: %s", &c.stderr)
	}
}

func startWriter(t *testing.T, path, run, name string, n int, wait bool, pause time.Duration) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{out: &lines{first: make(chan struct{})}, done: make(chan struct{})}
	c.cmd = exec.Command(exe, "-test.run=^$")
	c.cmd.Env = append(os.Environ(), helperEnv+"=1",
		"KILN_JOURNAL_PATH="+path, "KILN_JOURNAL_RUN="+run, "KILN_JOURNAL_NAME="+name,
		"KILN_JOURNAL_N="+strconv.Itoa(n), "KILN_JOURNAL_PAUSE="+pause.String())
	if wait {
		c.cmd.Env = append(c.cmd.Env, "KILN_JOURNAL_WAIT=1")
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		c.cmd.Stdin, c.stdin = r, w
		t.Cleanup(func() { r.Close(); w.Close() })
	}
	c.cmd.Stdout = c.out
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill() // fails harmlessly if it has exited
		<-c.done
	})
	return c
}

// lines collects a child's stdout. Writes of short lines to a pipe are
// atomic, so a killed child leaves no partial line.
type lines struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first chan struct{} // closed at the first write
	once  sync.Once
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.once.Do(func() { close(l.first) })
	return l.buf.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// steps returns the ids and names of the steps the child printed after word
// ("begin" or "end").
func (l *lines) steps(t *testing.T, word string) map[int64]string {
	t.Helper()
	steps := make(map[int64]string)
	for _, line := range strings.Split(l.String(), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != word {
			continue
		}
		id, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", line)
		}
		steps[id] = f[2]
	}
	return steps
}

func integrityCheck(t *testing.T, j *Journal) {
	t.Helper()
	rows, err := j.db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		t.Fatalf("integrity_check: %q", msgs)
	}
}

func TestTwoProcesses(t *testing.T) {
	tests := []struct {
		name  string
		pause time.Duration // between a writer's steps
		turns int           // at least this many changes of writer in step order
	}{
		// Back to back, one writer may hold the lock for most of the test
		// (SQLite's busy handler is not fair); the other must wait, not fail.
		{"back to back", 0, 1},
		// With pauses, as between real cloud calls, they take turns. On a
		// loaded machine a writer may run in bursts, so a few turns are
		// enough to show that the writes interleave (one turn is two
		// blocks, one after the other).
		{"with pauses", time.Millisecond, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testTwoProcesses(t, tt.pause, tt.turns) })
	}
}

func testTwoProcesses(t *testing.T, pause time.Duration, minTurns int) {
	// The journal does not exist yet: both processes create and migrate it.
	path := filepath.Join(t.TempDir(), "state", "journal.db")
	run := NewAssetID(time.Now())
	const n = 300
	names := []string{"w1", "w2"}
	var children []*child
	for _, name := range names {
		children = append(children, startWriter(t, path, run, name, n, true, pause))
	}
	// Both have opened the journal and started the run; let them go at once.
	for _, c := range children {
		c.waitFirstLine(t)
	}
	start := time.Now()
	for _, c := range children {
		if _, err := c.stdin.WriteString("go\n"); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range children {
		<-c.done
		if c.err != nil {
			t.Fatalf("writer %s: %v; stderr: %s", names[i], c.err, &c.stderr)
		}
	}
	t.Logf("2 processes x %d Begin/End pairs: %v", n, time.Since(start))

	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	integrityCheck(t, j)
	runs, err := j.Runs(context.Background())
	if err != nil || len(runs) != 1 {
		t.Fatalf("Runs = %d runs, %v; want the one both started", len(runs), err)
	}
	_, steps, err := j.Run(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2*n {
		t.Errorf("got %d steps, want %d", len(steps), 2*n)
	}
	byName := make(map[string]Step)
	for _, s := range steps {
		byName[s.Name] = s
	}
	for ci, name := range names {
		printed := children[ci].out.steps(t, "end")
		for i := range n {
			s, ok := byName[fmt.Sprintf("%s-%d", name, i)]
			want := StepSucceeded
			if i%2 == 1 {
				want = StepFailed
			}
			switch {
			case !ok:
				t.Errorf("step %s-%d missing", name, i)
			case s.State != want || s.Resource != fmt.Sprint("res-", s.ID) || printed[s.ID] != s.Name:
				t.Errorf("step %s-%d = %+v, want %s, resource res-%d, id printed by its writer", name, i, s, want, s.ID)
			}
		}
	}
	// The writes interleaved: each writer's steps are not one block.
	var switches int
	for i := 1; i < len(steps); i++ {
		if steps[i].Name[:2] != steps[i-1].Name[:2] {
			switches++
		}
	}
	t.Logf("writers took turns %d times", switches)
	if switches < minTurns {
		t.Errorf("writers took turns %d times, want at least %d: they did not write at the same time", switches, minTurns)
	}
}

func TestKilledWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	run := NewAssetID(time.Now())
	begun := make(map[int64]string) // id → name, over all rounds
	ended := make(map[int64]string)
	const rounds = 20
	for round := range rounds {
		c := startWriter(t, path, run, fmt.Sprint("round", round), 0, false, 0)
		// Most rounds kill the writer while it writes steps; every fourth
		// one kills it at any moment from its start, maybe while it opens
		// or creates the journal.
		if round%4 != 3 {
			c.waitFirstLine(t)
			time.Sleep(rand.N(100 * time.Millisecond))
		} else {
			time.Sleep(rand.N(50 * time.Millisecond))
		}
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-c.done
		if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: writer ended by %v, not by SIGKILL; stderr: %s", round, c.err, &c.stderr)
		}
		maps.Copy(begun, c.out.steps(t, "begin"))
		maps.Copy(ended, c.out.steps(t, "end"))

		j, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		integrityCheck(t, j)
		_, steps, err := j.Run(context.Background(), run)
		if err != nil && !(errors.Is(err, ErrUnknownRun) && len(begun) == 0) {
			t.Fatalf("round %d: %v", round, err)
		}
		have := make(map[int64]Step)
		for _, s := range steps {
			have[s.ID] = s
		}
		for id, name := range begun {
			s, ok := have[id]
			_, end := ended[id]
			switch {
			case !ok || s.Name != name:
				t.Errorf("round %d: step %d %s lost (Begin had returned); have %+v", round, id, name, s)
			case end && (s.State == StepStarted || s.Resource != fmt.Sprint("res-", id)):
				t.Errorf("round %d: step %d = %+v, but End had returned", round, id, s)
			}
		}
		var started int
		for _, s := range steps {
			if s.State == StepStarted {
				started++
			}
		}
		t.Logf("round %d: %d steps, %d left started", round, len(steps), started)
		j.Close()
	}
	if len(begun) < rounds {
		t.Errorf("only %d steps begun over %d rounds: the kills did not land while writing", len(begun), rounds)
	}
}
