package localunit

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
)

// NewProcess returns the kind of supervised process units.
func NewProcess(o Options) deploy.UnitKind {
	return &kind{opts: o.withDefaults(), impl: processImpl{}}
}

type processImpl struct{}

func (processImpl) kind() string { return config.UnitProcess }

func processOf(u deploy.Unit) (*config.ProcessUnit, error) {
	if u.Config == nil || u.Config.Process == nil {
		return nil, fmt.Errorf("unit %s is not a process unit", u.Name)
	}
	return u.Config.Process, nil
}

func (processImpl) portNames(u deploy.Unit) ([]string, map[string]int) {
	p, err := processOf(u)
	if err != nil {
		return nil, nil
	}
	return slices.Sorted(slices.Values(p.Ports)), nil
}

func (processImpl) replaces(meta, deploy.Unit) bool { return false }

func (processImpl) outputs(ports map[string]int) map[string]string {
	out := map[string]string{}
	for n, p := range ports {
		out["port."+n] = strconv.Itoa(p)
		out["url."+n] = "http://127.0.0.1:" + strconv.Itoa(p)
	}
	return out
}

// portVars are the unit's own placeholders: {port.NAME}.
func portVars(ports map[string]int) map[string]string {
	vars := map[string]string{}
	for n, p := range ports {
		vars["port."+n] = strconv.Itoa(p)
		if p == 0 {
			vars["port."+n] = "(a free port)"
		}
	}
	return vars
}

// expand fills a setting's placeholders; for settings it returns
// "[secret]" in place of a value a secret went into.
func expand(u deploy.Unit, s string, ports map[string]int, forPlan bool) (string, error) {
	v, secret, err := u.Expand(s, portVars(ports))
	if err != nil {
		return "", err
	}
	if secret && forPlan {
		return "[secret]", nil
	}
	return v, nil
}

func (processImpl) settings(u deploy.Unit, ports map[string]int) (map[string]string, error) {
	p, err := processOf(u)
	if err != nil {
		return nil, err
	}
	out := map[string]string{"restart": p.Restart, "stop_timeout": p.StopTimeout.String()}
	if p.Dir != "" {
		out["dir"] = p.Dir
	}
	var argv []string
	for _, a := range p.Command {
		v, err := expand(u, a, ports, true)
		if err != nil {
			return nil, err
		}
		argv = append(argv, strconv.Quote(v))
	}
	out["command"] = strings.Join(argv, " ")
	for n, v := range p.Env {
		if out["env."+n], err = expand(u, v, ports, true); err != nil {
			return nil, err
		}
	}
	for n := range ports {
		out["port."+n] = "127.0.0.1:" + portVars(ports)["port."+n]
	}
	for n, v := range u.Inputs {
		out["input."+n] = v.String()
	}
	if u.Image.ID != "" {
		out["image"] = u.Image.ID
	}
	return out, nil
}

func (processImpl) launch(ctx context.Context, u deploy.Unit, dir string, ports map[string]int, fresh bool) (launch, error) {
	p, err := processOf(u)
	if err != nil {
		return launch{}, err
	}
	var argv []string
	for _, a := range p.Command {
		v, err := expand(u, a, ports, false)
		if err != nil {
			return launch{}, err
		}
		argv = append(argv, v)
	}
	// A program given as a path is the project's; a bare name is looked
	// up in PATH.
	if len(argv) > 0 && strings.Contains(argv[0], "/") && !filepath.IsAbs(argv[0]) {
		argv[0] = filepath.Join(u.Dir, argv[0])
	}
	// A directory of the unit's own for what it stores; kiln destroy
	// removes it with the unit, or keeps it (type data-dir).
	data := filepath.Join(dir, dataDir)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return launch{}, err
	}
	env := supervisorEnv()
	env = append(env,
		"KILN_PROJECT="+u.Project, "KILN_DEPLOYMENT="+u.Deployment, "KILN_UNIT="+u.Name,
		"KILN_REGION="+u.Region, "KILN_VERSION="+u.Image.Version, "KILN_IMAGE_ID="+u.Image.ID,
		"KILN_DATA_DIR="+data,
	)
	for _, n := range slices.Sorted(maps.Keys(ports)) {
		env = append(env, fmt.Sprintf("KILN_PORT_%s=%d", strings.ToUpper(n), ports[n]))
	}
	for _, n := range slices.Sorted(maps.Keys(u.Inputs)) {
		env = append(env, "KILN_INPUT_"+strings.ToUpper(n)+"="+u.Inputs[n].Text)
	}
	for _, n := range slices.Sorted(maps.Keys(p.Env)) {
		v, err := expand(u, p.Env[n], ports, false)
		if err != nil {
			return launch{}, err
		}
		env = append(env, n+"="+v)
	}
	var open []int
	for _, n := range slices.Sorted(maps.Keys(ports)) {
		open = append(open, ports[n])
	}
	return launch{
		Kind: config.UnitProcess, Token: u.Token, Restart: p.Restart, StopTimeout: p.StopTimeout.Std(),
		Argv: argv, Env: env, WorkDir: filepath.Join(u.Dir, p.Dir), Ports: open,
	}, nil
}
