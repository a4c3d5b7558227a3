package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Destroy holds the rules of `kiln destroy`: which resource types a
// teardown keeps, when it asks before acting, and how long it looks again
// for what should be gone.
type Destroy struct {
	// Retain lists resource types a teardown keeps, whatever made them
	// (e.g. [log-group, user-pool]: the logs and the users of a customer
	// outlive its deployment). Resources tagged kiln:retain=true and stack
	// resources with a Retain deletion policy are kept anyway. `kiln
	// destroy --purge-retained` removes them too.
	Retain []string `yaml:"retain"`
	// ConfirmAbove is the number of resources above which destroy asks
	// for the deployment's name to be typed (or --yes); default 20. A
	// protected deployment always asks.
	ConfirmAbove int `yaml:"confirm_above"`
	// VerifyTimeout bounds how long destroy keeps listing, after the
	// deletions, until nothing that should be gone is found; default 5m.
	VerifyTimeout Duration `yaml:"verify_timeout"`
}

// RetainTypes are the resource types destroy.retain may name: kiln's
// names for what a deployment makes outside its compute (the local
// backend's VM disks and process data directories, and aws storage,
// identities and logs).
var RetainTypes = []string{
	"bucket", "data-dir", "image", "log-group", "overlay", "parameter", "repository",
	"role", "secret", "snapshot", "user-pool", "volume",
}

// Retains reports whether the project's rules keep resources of type typ.
func (d Destroy) Retains(typ string) bool { return slices.Contains(d.Retain, typ) }

const (
	defaultDestroyConfirm = 20
	defaultVerifyTimeout  = Duration(5 * time.Minute)
)

func applyDestroyDefaults(c *Config, d *decoder) {
	if !d.isSet("destroy.confirm_above") {
		c.Destroy.ConfirmAbove = defaultDestroyConfirm
	}
	if !d.isSet("destroy.verify_timeout") {
		c.Destroy.VerifyTimeout = defaultVerifyTimeout
	}
}

func (k *checker) checkDestroy() {
	d := k.c.Destroy
	seen := map[string]bool{}
	for i, t := range d.Retain {
		p := fmt.Sprintf("destroy.retain[%d]", i)
		switch {
		case !slices.Contains(RetainTypes, t):
			k.errorf(p, "%q is not a resource type destroy knows; use one of %s", t, strings.Join(RetainTypes, ", "))
		case seen[t]:
			k.errorf(p, "%q is listed twice", t)
		}
		seen[t] = true
	}
	if d.ConfirmAbove < 0 {
		k.errorf("destroy.confirm_above", "%d is negative; use 0 to confirm every destroy", d.ConfirmAbove)
	}
	if d.VerifyTimeout <= 0 || d.VerifyTimeout > Duration(24*time.Hour) {
		k.errorf("destroy.verify_timeout", "%s is out of range; use a duration above 0 and up to 24h, e.g. 5m", d.VerifyTimeout)
	}
}
