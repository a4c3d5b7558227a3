package deploy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// HookResult is one hook's run.
type HookResult struct {
	Name string `json:"name"`
	// Skipped: the journal shows it done in the run being resumed, or the
	// deploy changed nothing.
	Skipped  bool   `json:"skipped"`
	Duration string `json:"duration,omitempty"`
	Error    string `json:"error,omitempty"`
}

// hookEnv is the environment hooks and command checks run with: the
// machine's basic variables, and the deployment's release, outputs and
// inputs (secrets included: hooks often need them; their output is
// redacted).
func (d *Deployer) hookEnv(def *config.Deployment, rel *record.Release, inputs map[string]Value, outputs map[string]string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env,
		"KILN_PROJECT="+d.Config.Project, "KILN_DEPLOYMENT="+def.Name, "KILN_REGION="+def.Region,
		"KILN_RELEASE="+rel.ID, "KILN_VERSION="+rel.Version, "KILN_IMAGE_ID="+rel.Images[def.Region],
	)
	for _, k := range sortedKeys(outputs) {
		env = append(env, "KILN_OUTPUT_"+envName(k)+"="+outputs[k])
	}
	for _, k := range sortedKeys(inputs) {
		env = append(env, "KILN_INPUT_"+envName(k)+"="+inputs[k].Text)
	}
	return env
}

// envName turns an output or input name into the tail of a variable
// name: web.url.http -> WEB_URL_HTTP.
func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			return r
		}
		return '_'
	}, s)
}

// command resolves a hook's or check's program: a path is the project's,
// a bare name is looked up in PATH.
func (d *Deployer) command(argv []string) []string {
	out := slices.Clone(argv)
	if len(out) > 0 && strings.Contains(out[0], "/") && !filepath.IsAbs(out[0]) {
		out[0] = d.Config.Resolve(out[0])
	}
	return out
}

// runHook runs one hook in the project's directory, logging its output
// line by line with secrets replaced.
func (d *Deployer) runHook(ctx context.Context, h config.Hook, env, secrets []string) HookResult {
	res := HookResult{Name: h.Name}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, h.Timeout.Std())
	defer cancel()
	argv := d.command(h.Command)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, d.Config.Dir
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var wg sync.WaitGroup
	var tail []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := redact(sc.Text(), secrets)
			d.log().Info("hook", "hook", h.Name, "out", line)
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	pw.Close()
	wg.Wait()
	res.Duration = time.Since(start).Round(time.Millisecond).String()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		res.Error = fmt.Sprintf("did not finish within %s", h.Timeout)
	case err != nil:
		res.Error = redact(err.Error(), secrets)
		if len(tail) > 0 {
			res.Error += ": " + strings.Join(tail, " | ")
		}
	}
	return res
}

func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[secret]")
		}
	}
	return s
}
