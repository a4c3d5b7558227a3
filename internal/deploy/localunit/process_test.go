package localunit

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/unittest"
)

// The test binary is also the supervisor its kinds start.
func TestMain(m *testing.M) {
	MaybeSupervise()
	os.Exit(m.Run())
}

const python = "/usr/bin/python3"

// secretText is a secret input of every test unit; no file kiln writes
// may hold it.
const secretText = "s3cret-never-on-disk"

// testUnit is a unit of deployment dep in project dir.
func testUnit(dir, dep, name string, cfg *config.Unit, token string) deploy.Unit {
	cfg.Name = name
	return deploy.Unit{
		Project: "demo", Deployment: dep, Name: name, Region: "local-a", Config: cfg,
		Image:  deploy.Image{ID: "img-0123456789abcdef0", Version: "1.0"},
		Inputs: map[string]deploy.Value{"greeting": {Text: "hello"}, "token": {Text: secretText, Secret: true}},
		Tags:   deploy.UnitTags("demo", dep, name, "rel-1", "team", dep),
		Token:  token,
		Dir:    dir,
	}
}

// webUnit is a process unit serving HTTP on its port http.
func webUnit(dir, dep string, variant int) deploy.Unit {
	greeting := "{inputs.greeting}"
	if variant == 1 {
		greeting = "{inputs.greeting}, again"
	}
	cfg := &config.Unit{Process: &config.ProcessUnit{
		Command:     []string{python, "-m", "http.server", "--bind", "127.0.0.1", "{port.http}"},
		Env:         map[string]string{"GREETING": greeting, "TOKEN": "{inputs.token}"},
		Ports:       []string{"http"},
		Restart:     "on-failure",
		StopTimeout: config.Duration(5 * time.Second),
	}}
	return testUnit(dir, dep, "web", cfg, dep+"-v"+string(rune('0'+variant)))
}

func testOptions(t *testing.T) Options {
	return Options{StateDir: filepath.Join(t.TempDir(), "state"), ReadyTimeout: time.Minute, RestartBackoff: 200 * time.Millisecond}
}

// get reads url; ok is false when nothing answers.
func get(url string) (string, bool) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), true
}

func TestProcessConformance(t *testing.T) {
	o := testOptions(t)
	dir := t.TempDir()
	k := NewProcess(o)
	unittest.Run(t, unittest.Harness{
		Kind: k,
		Unit: func(t *testing.T, dep string, variant int) deploy.Unit { return webUnit(dir, dep, variant) },
		// Observed from outside: the unit's directory, and whether its port
		// answers HTTP.
		Observe: func(t *testing.T, u deploy.Unit) (bool, bool) {
			d := unitDir(o.StateDir, u)
			if _, err := os.Stat(d); err != nil {
				return false, false
			}
			m, _, err := readMeta(d)
			if err != nil || m.Outputs["url.http"] == "" {
				return true, false
			}
			_, ok := get(m.Outputs["url.http"] + "/")
			return true, ok
		},
		Kill: func(t *testing.T, u deploy.Unit) {
			st, _, err := readState(unitDir(o.StateDir, u))
			if err != nil || st.Child == 0 {
				t.Fatalf("no child to kill: %+v, %v", st, err)
			}
			syscall.Kill(st.Child, syscall.SIGKILL)
		},
		Timeout: 2 * time.Minute,
	})
	assertNoSecret(t, o.StateDir)
}

// assertNoSecret fails when a file under dir holds the secret input.
func assertNoSecret(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSocket != 0 {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && strings.Contains(string(data), secretText) {
			t.Errorf("%s holds the secret", p)
		}
		return nil
	})
}

// A process gets its inputs, ports and release in its environment, and
// keeps running after the kind (kiln) is done with it.
func TestProcessEnvironment(t *testing.T) {
	o := testOptions(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "env.out")
	cfg := &config.Unit{Process: &config.ProcessUnit{
		Command: []string{"sh", "-c", `echo "$GREETING|$KILN_INPUT_TOKEN|$KILN_DEPLOYMENT|$KILN_VERSION|$1" > ` + out + `; exec sleep 600`, "sh", "{inputs.greeting}"},
		Env:     map[string]string{"GREETING": "{inputs.greeting} from {deployment}"},
		Restart: "never", StopTimeout: config.Duration(time.Second),
	}}
	u := testUnit(dir, "dev", "env", cfg, "t1")
	k := NewProcess(o)
	t.Cleanup(func() { k.Destroy(context.Background(), u) })
	st, err := k.Apply(t.Context(), u)
	if err != nil || st.State != deploy.UnitRunning {
		t.Fatalf("Apply: %+v, %v", st, err)
	}
	var got []byte
	for range 50 {
		if got, err = os.ReadFile(out); err == nil && len(got) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if want := "hello from dev|" + secretText + "|dev|1.0|hello\n"; string(got) != want {
		t.Errorf("the process saw %q, want %q", got, want)
	}
	// Its plan shows no secret's value.
	p, err := k.Plan(t.Context(), func() deploy.Unit { v := u; v.Token = "t2"; return v }())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(p.Changes, " "), secretText) {
		t.Errorf("plan shows the secret: %v", p.Changes)
	}
	assertNoSecret(t, o.StateDir)
}

// A process that dies is restarted under on-failure, reported, and given
// up on after too many deaths; under never it stays dead.
func TestProcessRestartPolicy(t *testing.T) {
	o := testOptions(t)
	dir := t.TempDir()
	k := NewProcess(o)
	// Dies one second after each start: long enough to count as up.
	dying := func(policy string) deploy.Unit {
		cfg := &config.Unit{Process: &config.ProcessUnit{
			Command: []string{"sh", "-c", "sleep 1; exit 3"}, Restart: policy, StopTimeout: config.Duration(time.Second),
		}}
		return testUnit(dir, "dev", "die-"+policy, cfg, "t-"+policy)
	}
	for _, tc := range []struct {
		policy  string
		problem string
	}{
		{"never", "ended by itself (exit status 3"},
		{"on-failure", "died 6 times within 10m0s"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			u := dying(tc.policy)
			t.Cleanup(func() { k.Destroy(context.Background(), u) })
			if _, err := k.Apply(t.Context(), u); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			deadline := time.Now().Add(90 * time.Second)
			for {
				st, err := k.Status(t.Context(), u)
				if err != nil {
					t.Fatal(err)
				}
				if st.State == deploy.UnitFailed {
					if !strings.Contains(st.Problem, tc.problem) {
						t.Errorf("problem %q, want %q", st.Problem, tc.problem)
					}
					if tc.policy == "on-failure" && st.Restarts != restartBurst {
						t.Errorf("restarts %d, want %d", st.Restarts, restartBurst)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still %+v", st)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if p, err := k.Plan(t.Context(), u); err != nil || p.Action != deploy.ActionStart {
				t.Errorf("plan of a failed unit: %+v, %v; want start", p, err)
			}
		})
	}
}
