package config

import (
	"fmt"
	"strings"
	"time"
)

// Deployment is a named environment that runs a released image: dev,
// staging, prod, a shared sandbox, a personal deployment made from a
// template. kiln deploys it, verifies it, promotes releases into it from
// another deployment, and records what runs there in
// deployments/<name>.json.
//
// After decoding, Deployments hold their merged definitions: a deployment
// that extends another has the other's settings wherever it sets none of
// its own (mappings such as units and inputs merge by key; lists and
// single values are replaced).
type Deployment struct {
	Name string `yaml:"-"`
	// Extends names the deployment this one starts from.
	Extends     string `yaml:"extends"`
	Description string `yaml:"description"`
	// Template marks a definition engineers copy into personal
	// deployments (`kiln deploy --new NAME --from TEMPLATE`); a template
	// is never deployed itself.
	Template bool `yaml:"template"`
	// ExpireAfter is how long a personal deployment made from this
	// template lives; default 7d.
	ExpireAfter Duration `yaml:"expire_after"`
	// Protect makes `kiln destroy` refuse the deployment unless given
	// --force-protected, and then always ask for its name to be typed (or
	// --yes); on aws its stacks get termination protection when deployed.
	Protect bool `yaml:"protect"`
	// Region is where the deployment runs; default the build region.
	Region string `yaml:"region"`
	// Account is the account it runs in: on aws one of
	// backend.aws.allowed_accounts (default: the only one), locally the
	// local account id.
	Account string `yaml:"account"`
	// CostTag is the value of the project's cost tag (cost_tag.key) on the
	// deployment's resources; default the deployment's name (see
	// CostTagValue).
	CostTag string           `yaml:"cost_tag"`
	Image   DeploymentImage  `yaml:"image"`
	Units   map[string]*Unit `yaml:"units"`
	// Inputs are values the units, hooks and checks use: literals, other
	// deployments' outputs, and secrets resolved at deploy time.
	Inputs map[string]*Input `yaml:"inputs"`
	// DependsOn lists the deployments whose outputs this one reads; they
	// must be deployed first.
	DependsOn []string  `yaml:"depends_on"`
	Hooks     Hooks     `yaml:"hooks"`
	Checks    []Check   `yaml:"checks"`
	Promote   Promotion `yaml:"promote"`
}

// DeploymentImage is the image a deployment runs: a use case's entry in a
// channel's manifest, or a pinned image id.
type DeploymentImage struct {
	UseCase string `yaml:"use_case"`
	// Arch selects the architecture; default the use case's only one.
	Arch string `yaml:"arch"`
	// Channel resolves the image from that channel's manifest at deploy
	// time.
	Channel string `yaml:"channel"`
	// ID pins an image id in the deployment's region instead.
	ID string `yaml:"id"`
}

// Unit is one part of a deployment. Exactly one of VM, Process, Stack and
// Instance is set; it says the unit's kind.
type Unit struct {
	Name string `yaml:"-"`
	// After lists units of the same deployment that are applied before
	// this one (and destroyed after it).
	After    []string      `yaml:"after"`
	VM       *VMUnit       `yaml:"vm"`
	Process  *ProcessUnit  `yaml:"process"`
	Stack    *StackUnit    `yaml:"stack"`
	Instance *InstanceUnit `yaml:"instance"`
}

// Unit kinds, as Unit.Kind returns them.
const (
	UnitVM       = "vm"
	UnitProcess  = "process"
	UnitStack    = "stack"
	UnitInstance = "instance"
)

// unitKindBackends says on which backend each unit kind runs.
var unitKindBackends = map[string]string{
	UnitVM: "local", UnitProcess: "local", UnitStack: "aws", UnitInstance: "aws",
}

// Kind returns the unit's kind, or "" when it sets none (validation
// rejects those).
func (u *Unit) Kind() string {
	switch {
	case u.VM != nil:
		return UnitVM
	case u.Process != nil:
		return UnitProcess
	case u.Stack != nil:
		return UnitStack
	case u.Instance != nil:
		return UnitInstance
	}
	return ""
}

// VMUnit is a qemu VM (local backend) booted from the deployment's image
// through a copy-on-write overlay.
type VMUnit struct {
	// Memory is the guest's memory; default 1GiB.
	Memory Size `yaml:"memory"`
	// CPUs is the number of virtual CPUs; default 1.
	CPUs int `yaml:"cpus"`
	// Ports maps names to guest TCP ports, each forwarded from a loopback
	// port on the host.
	Ports map[string]int `yaml:"ports"`
	// HostPorts fixes the host port of named ports; the others get a free
	// port at the first deploy and keep it.
	HostPorts map[string]int `yaml:"host_ports"`
	// Restart is "on-failure" (default: the unit's supervisor boots the VM
	// again when it stops by itself) or "never".
	Restart string `yaml:"restart"`
	// StopTimeout is how long a clean shutdown (ACPI power button over
	// QMP) may take before qemu is stopped hard; default 60s.
	StopTimeout Duration `yaml:"stop_timeout"`
}

// ProcessUnit is a supervised process on the machine kiln runs on (local
// backend).
type ProcessUnit struct {
	// Command is the program and its arguments; a relative program path
	// is resolved against the config's directory. Arguments may use
	// placeholders ({version}, {image_id}, {inputs.NAME}, {port.NAME}, ...).
	Command []string `yaml:"command"`
	// Dir is the working directory, relative to the config's; default the
	// config's directory.
	Dir string `yaml:"dir"`
	// Env sets environment variables; values may use placeholders.
	Env map[string]string `yaml:"env"`
	// Ports names loopback ports kiln allocates for the process, passed as
	// KILN_PORT_<NAME> and {port.NAME}.
	Ports   []string `yaml:"ports"`
	Restart string   `yaml:"restart"` // on-failure (default) or never
	// StopTimeout is how long the process may take to exit after SIGTERM
	// before it is killed; default 10s.
	StopTimeout Duration `yaml:"stop_timeout"`
}

// StackUnit is a CloudFormation stack (aws backend) made from a template
// of the project, with the image id and the deployment's values passed as
// parameters.
type StackUnit struct {
	// Template is the template file, relative to the config's directory.
	Template string `yaml:"template"`
	// Parameters maps template parameters to values, which may use
	// placeholders ({image_id}, {inputs.NAME}, ...).
	Parameters map[string]string `yaml:"parameters"`
	// Capabilities acknowledges IAM resources (CAPABILITY_IAM,
	// CAPABILITY_NAMED_IAM, CAPABILITY_AUTO_EXPAND).
	Capabilities []string `yaml:"capabilities"`
}

// InstanceUnit is EC2 instances (aws backend) booted from the image.
type InstanceUnit struct {
	InstanceType   string   `yaml:"instance_type"` // default t3.micro
	Count          int      `yaml:"count"`         // default 1
	SubnetID       string   `yaml:"subnet_id"`
	SecurityGroups []string `yaml:"security_groups"`
	// UserData is a file passed as user data, relative to the config's
	// directory.
	UserData string `yaml:"user_data"`
}

// Input is one named value of a deployment. Exactly one of Value, From and
// Secret is set.
type Input struct {
	// Value is a literal.
	Value *string `yaml:"value"`
	// From is another deployment's output, "DEPLOYMENT.OUTPUT" (outputs
	// are named UNIT.NAME, e.g. shared.db.endpoint); the deployment must
	// be listed in depends_on.
	From string `yaml:"from"`
	// Secret is resolved when kiln deploys and never stored or printed.
	Secret *SecretRef `yaml:"secret"`
}

// SecretRef says where a secret is read from: exactly one of Env, File,
// SSM and SecretsManager.
type SecretRef struct {
	Env  string `yaml:"env"`  // an environment variable of the kiln process
	File string `yaml:"file"` // a file, relative to the config's directory
	// SSM is the name of an SSM SecureString parameter.
	SSM string `yaml:"ssm"`
	// SecretsManager is the id or ARN of a Secrets Manager secret.
	SecretsManager string `yaml:"secrets_manager"`
	// Region is where SSM and Secrets Manager are read; default the
	// deployment's region on aws (required on the local backend).
	Region string `yaml:"region"`
}

// Hooks are commands run on the machine kiln runs on at points of a
// deployment's life.
type Hooks struct {
	PostDeploy []Hook `yaml:"post_deploy"`
	PreDestroy []Hook `yaml:"pre_destroy"`
}

// Hook is one command. It gets the deployment's inputs (secrets
// included), outputs and release in its environment and must be safe to
// run again.
type Hook struct {
	Name string `yaml:"name"`
	// Command is the program and its arguments; a relative program path
	// is resolved against the config's directory.
	Command []string `yaml:"command"`
	// Timeout bounds the hook; default 5m.
	Timeout Duration `yaml:"timeout"`
}

// Check is one verification of a deployment: an HTTP request or a
// command, measured Count times, Interval apart, as Argo Rollouts'
// analysis runs do. Exactly one of HTTP and Command is set.
type Check struct {
	Name    string     `yaml:"name"`
	HTTP    *HTTPCheck `yaml:"http"`
	Command []string   `yaml:"command"`
	// InitialDelay is waited before the first measurement.
	InitialDelay Duration `yaml:"initial_delay"`
	// Interval is the pause between measurements; default 5s.
	Interval Duration `yaml:"interval"`
	// Count is the number of measurements; default 1.
	Count int `yaml:"count"`
	// FailureLimit is how many failed measurements are tolerated; one more
	// fails the check. Default 0.
	FailureLimit int `yaml:"failure_limit"`
	// ConsecutiveErrorLimit is how many measurements in a row may end in
	// an error (no answer, a timeout) before the check fails; default 4.
	ConsecutiveErrorLimit *int `yaml:"consecutive_error_limit"`
	// Timeout bounds one measurement; default 10s.
	Timeout Duration `yaml:"timeout"`
}

// HTTPCheck is a GET request and what its answer must be.
type HTTPCheck struct {
	// URL may use placeholders: outputs ({web.url.http}), {version},
	// {image_id}, {inputs.NAME}.
	URL string `yaml:"url"`
	// Headers are sent with the request; values may use placeholders,
	// secrets included.
	Headers map[string]string `yaml:"headers"`
	// Status is the status code the answer must have; default 200.
	Status int `yaml:"status"`
	// JSONField names a field of a JSON answer ("version", "build.id")
	// that must equal Equals.
	JSONField string `yaml:"json_field"`
	// Equals is what JSONField must hold; placeholders allowed, e.g.
	// "{version}" or "{image_id}".
	Equals string `yaml:"equals"`
	// Body is a regular expression (RE2) the body must match.
	Body string `yaml:"body"`
}

// Promotion holds the gates of promotions into a deployment (`kiln
// promote --from SRC --to THIS`). Every promotion also needs the source's
// last verification to have passed, the target not to be locked or held,
// and the image not to be deprecated.
type Promotion struct {
	// From is the only deployment releases are promoted from, when set.
	From string `yaml:"from"`
	// Soak is how long the release must have run in the source since its
	// deployment there, verified, before it may be promoted.
	Soak Duration `yaml:"soak"`
	// Approval requires a recorded approval of the release (`kiln approve
	// THIS`).
	Approval bool `yaml:"approval"`
	// Windows are the times promotions may happen in; none: any time.
	Windows []Window `yaml:"windows"`
}

// Window is a weekly time range.
type Window struct {
	// Days are mon, tue, wed, thu, fri, sat, sun; default every day.
	Days []string `yaml:"days"`
	// Start and End are times of day, "09:00" and "17:00"; End after
	// Start. Default the whole day.
	Start string `yaml:"start"`
	End   string `yaml:"end"`
	// Timezone is an IANA zone name such as Europe/Berlin; default UTC.
	Timezone string `yaml:"timezone"`
}

// CostTagValue is the value of the project's cost tag on the deployment's
// resources: CostTag, or the deployment's name.
func (d *Deployment) CostTagValue() string {
	if d.CostTag != "" {
		return d.CostTag
	}
	return d.Name
}

// UnitOrder returns the names of the deployment's units in the order they
// are applied: each after the units its After lists, otherwise by name.
// Destroying goes the other way.
func (d *Deployment) UnitOrder() []string {
	order, _ := unitOrder(d.Units)
	return order
}

// DeploymentNames returns the names of the deployments, templates
// included, sorted.
func (c *Config) DeploymentNames() []string { return sortedKeys(c.Deployments) }

// Deployment returns the deployment called name, as kiln.yaml defines it
// (templates included; personal deployments live in their records).
func (c *Config) Deployment(name string) (*Deployment, error) {
	if d, ok := c.Deployments[name]; ok {
		return d, nil
	}
	known := "none"
	if len(c.Deployments) > 0 {
		known = strings.Join(c.DeploymentNames(), ", ")
	}
	return nil, fmt.Errorf("deployment %q: %w; defined deployments: %s", name, ErrUnknown, known)
}

// Deployment defaults.
const (
	defaultExpireAfter  = Duration(7 * day)
	defaultVMMemory     = Size(1 << 30)
	defaultVMStop       = Duration(60 * time.Second)
	defaultProcessStop  = Duration(10 * time.Second)
	defaultHookTimeout  = Duration(5 * time.Minute)
	defaultInterval     = Duration(5 * time.Second)
	defaultCheckTimeout = Duration(10 * time.Second)
	defaultErrorLimit   = 4
)

// applyDeploymentDefaults merges deployments with those they extend, then
// fills in what none of them set.
func applyDeploymentDefaults(c *Config, d *decoder) {
	if len(c.Deployments) == 0 {
		return
	}
	for name, dep := range c.Deployments {
		if dep == nil {
			c.Deployments[name] = &Deployment{}
		}
	}
	resolveExtends(c, d)
	for name, dep := range c.Deployments {
		chain := extendsChain(c.Deployments, name)
		// set reports whether any deployment of the chain sets rest.
		set := func(rest string) bool {
			for _, n := range chain {
				if d.isSet(joinPath("deployments", n) + "." + rest) {
					return true
				}
			}
			return false
		}
		if dep.Region == "" {
			dep.Region = c.BuildRegion
		}
		if dep.Account == "" {
			switch {
			case c.Backend.Type == "local":
				dep.Account = c.Backend.Local.AccountID
			case len(c.Backend.AWS.AllowedAccounts) == 1:
				dep.Account = c.Backend.AWS.AllowedAccounts[0]
			}
		}
		if dep.Template && !set("expire_after") {
			dep.ExpireAfter = defaultExpireAfter
		}
		if u, ok := c.UseCases[dep.Image.UseCase]; ok && dep.Image.Arch == "" && len(u.Architectures) == 1 {
			dep.Image.Arch = u.Architectures[0]
		}
		for uname, u := range dep.Units {
			u.Name = uname
			p := "units." + joinPath("", uname)
			if v := u.VM; v != nil {
				if !set(p + ".vm.memory") {
					v.Memory = defaultVMMemory
				}
				if !set(p + ".vm.cpus") {
					v.CPUs = 1
				}
				if v.Restart == "" {
					v.Restart = "on-failure"
				}
				if !set(p + ".vm.stop_timeout") {
					v.StopTimeout = defaultVMStop
				}
			}
			if pr := u.Process; pr != nil {
				if pr.Restart == "" {
					pr.Restart = "on-failure"
				}
				if !set(p + ".process.stop_timeout") {
					pr.StopTimeout = defaultProcessStop
				}
			}
			if in := u.Instance; in != nil {
				if in.InstanceType == "" {
					in.InstanceType = defaultInstanceType
				}
				if !set(p + ".instance.count") {
					in.Count = 1
				}
			}
		}
		for _, hooks := range []struct {
			list []Hook
			path string
		}{{dep.Hooks.PostDeploy, "hooks.post_deploy"}, {dep.Hooks.PreDestroy, "hooks.pre_destroy"}} {
			for i := range hooks.list {
				h := &hooks.list[i]
				if !set(fmt.Sprintf("%s[%d].timeout", hooks.path, i)) {
					h.Timeout = defaultHookTimeout
				}
				if h.Name == "" && len(h.Command) > 0 {
					h.Name = h.Command[0]
				}
			}
		}
		for i := range dep.Checks {
			ch := &dep.Checks[i]
			p := fmt.Sprintf("checks[%d]", i)
			if !set(p + ".interval") {
				ch.Interval = defaultInterval
			}
			if !set(p + ".count") {
				ch.Count = 1
			}
			if !set(p + ".timeout") {
				ch.Timeout = defaultCheckTimeout
			}
			if ch.ConsecutiveErrorLimit == nil {
				n := defaultErrorLimit
				ch.ConsecutiveErrorLimit = &n
			}
			if ch.HTTP != nil && !set(p+".http.status") {
				ch.HTTP.Status = 200
			}
			if ch.Name == "" {
				ch.Name = fmt.Sprintf("check-%d", i+1)
			}
		}
		for i := range dep.Promote.Windows {
			if dep.Promote.Windows[i].Timezone == "" {
				dep.Promote.Windows[i].Timezone = "UTC"
			}
		}
	}
}
