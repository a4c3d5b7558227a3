package debimage

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Where the recipe's variables wait for the steps in the chroot: a
// directory only root may read, in the scratch directory mmdebstrap
// empties before it packs the root filesystem, so no value reaches the
// image. Nothing with a value is ever on a command line (mmdebstrap echoes
// hook commands, ps shows arguments): shell steps source a file, Ansible
// reads its extra vars from a file.
const (
	chrootVars   = chrootScratch + "/vars"
	chrootVarEnv = chrootVars + "/vars.env"
)

// hookVars says which variable files the steps find in the chroot.
type hookVars struct {
	env   bool // chrootVarEnv, for shell steps
	extra bool // chrootExtraVars of each ansible step
}

// chrootExtraVars is the extra vars file of ansible step n in the chroot.
func chrootExtraVars(n int) string { return fmt.Sprintf("%s/ansible-%d.json", chrootVars, n) }

// writeVarFiles writes, in a new directory under dir that only its owner
// may read, the shell steps' environment (when there are variables) and
// each ansible step's extra vars: the recipe's variables with the step's
// own extra_vars over them. It returns the directory, or "" when no step
// needs a file. mmdebstrap's copy-in keeps the modes.
func writeVarFiles(dir string, vars []cloud.Var, steps []step) (string, error) {
	needed := len(vars) > 0
	for _, st := range steps {
		needed = needed || (st.kind == "ansible" && len(st.vars) > 0)
	}
	if !needed {
		return "", nil
	}
	out := filepath.Join(dir, "vars")
	if err := os.MkdirAll(out, 0o700); err != nil {
		return "", err
	}
	if err := os.Chmod(out, 0o700); err != nil {
		return "", err
	}
	if len(vars) > 0 {
		if err := writePrivate(filepath.Join(out, "vars.env"), []byte(shellEnv(vars))); err != nil {
			return "", err
		}
	}
	for _, st := range steps {
		if st.kind != "ansible" {
			continue
		}
		data, err := json.Marshal(cloud.ExtraVars(vars, st.vars))
		if err != nil {
			return "", err
		}
		if err := writePrivate(filepath.Join(out, filepath.Base(chrootExtraVars(st.n))), data); err != nil {
			return "", err
		}
	}
	return out, nil
}

// shellEnv is the variables as shell assignments, exported.
func shellEnv(vars []cloud.Var) string {
	var b strings.Builder
	for _, v := range vars {
		fmt.Fprintf(&b, "export %s=%s\n", v.Name, quote(v.Value))
	}
	return b.String()
}

// writePrivate writes a file only its owner may read.
func writePrivate(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
