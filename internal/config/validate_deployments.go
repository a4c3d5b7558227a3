package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // deployment windows name IANA zones; not every machine has /usr/share/zoneinfo
)

var (
	deploymentRE = regexp.MustCompile(`^[a-z][a-z0-9-]*[a-z0-9]$`)
	unitRE       = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)
	inputRE      = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	portNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)
	jsonFieldRE  = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	clockRE      = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$`)
	stackParamRE = regexp.MustCompile(`^[A-Za-z0-9]{1,255}$`)
	sgRE         = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
)

// Deployment names are 2 to 16 characters.
const (
	minDeploymentName = 2
	maxDeploymentName = 16
)

// reservedDeploymentNames are words a deployment may not be called:
// `kiln promote --from X --to Y` takes channels or deployments, and
// commands take a deployment where they could take a word of their own.
var reservedDeploymentNames = []string{
	"all", "any", "apply", "approve", "aws", "current", "default", "deploy", "deployment",
	"deployments", "destroy", "disable", "enable", "from", "head", "help", "kiln", "latest",
	"list", "local", "lock", "new", "none", "previous", "promote", "ref", "release", "rollback",
	"stable", "status", "template", "to", "unlock", "verify",
}

// CheckDeploymentName returns why name cannot name a deployment of c, or
// "" when it can. It applies to personal deployments too, whose names are
// given on the command line.
func (c *Config) CheckDeploymentName(name string) string {
	switch n := len(name); {
	case n < minDeploymentName || n > maxDeploymentName || !deploymentRE.MatchString(name):
		return fmt.Sprintf("invalid deployment name %q; use %d to %d lowercase letters, digits and dashes, starting with a letter and not ending in a dash",
			name, minDeploymentName, maxDeploymentName)
	case slices.Contains(reservedDeploymentNames, name):
		return fmt.Sprintf("%q is reserved (a command word); choose another deployment name", name)
	case slices.Contains(c.ChannelNames(), name):
		return fmt.Sprintf("%q is a channel's name; deployments and channels need different names (promote takes either)", name)
	}
	return ""
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

var restartPolicies = []string{"on-failure", "never"}

var stackCapabilities = []string{"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"}

// depChecker checks one merged deployment. Problems with a value are
// reported where the value was written: for an inherited value in the
// deployment it came from, so that a mistake in dev is reported once, not
// again for every deployment extending dev.
type depChecker struct {
	*checker
	dep   *Deployment
	chain []string
}

// at returns the path of rest (a field path inside the deployment) in the
// nearest deployment of the chain that sets it, or in this deployment.
func (k depChecker) at(rest string) string {
	for _, name := range k.chain {
		p := joinPath("deployments", name) + "." + rest
		if _, ok := k.d.values[p]; ok {
			return p
		}
		if _, ok := k.d.keys[p]; ok {
			return p
		}
	}
	return joinPath("deployments", k.dep.Name) + "." + rest
}

func (k depChecker) errorf(rest, format string, args ...any) {
	k.checker.errorf(k.at(rest), format, args...)
}

func (k depChecker) keyErrorf(rest, format string, args ...any) {
	k.checker.keyErrorf(k.at(rest), format, args...)
}

func (k *checker) checkDeployments() {
	deps := k.c.Deployments
	hostPorts := map[int]string{} // fixed host port → where
	for _, name := range sortedKeys(deps) {
		dep := deps[name]
		path := joinPath("deployments", name)
		if msg := k.c.CheckDeploymentName(name); msg != "" {
			k.keyErrorf(path, "%s", msg)
		}
		chain := extendsChain(deps, name)
		if e := dep.Extends; e != "" {
			switch last := deps[chain[len(chain)-1]]; {
			case deps[e] == nil:
				k.errorf(path+".extends", "deployment %q is not defined; defined: %s", e, strings.Join(sortedKeys(deps), ", "))
			case last.Extends != "" && deps[last.Extends] != nil:
				k.errorf(path+".extends", "extends goes round in a circle: %s -> %s", strings.Join(chain, " -> "), last.Extends)
			}
		}
		dk := depChecker{checker: k, dep: dep, chain: chain}
		dk.check(hostPorts)
	}
	k.checkDependencyCycles()
}

func (k depChecker) check(hostPorts map[int]string) {
	d, c := k.dep, k.c
	if d.ExpireAfter != 0 && !d.Template {
		k.errorf("expire_after", "only a template (template: true) has an expiry; its personal deployments get it")
	} else if d.ExpireAfter < 0 {
		k.errorf("expire_after", "%s is negative", d.ExpireAfter)
	}
	if !slices.Contains(c.Regions, d.Region) {
		k.errorf("region", "region %q is not among regions %s", d.Region, k.regionList())
	}
	switch c.Backend.Type {
	case "local":
		if d.Account != c.Backend.Local.AccountID {
			k.errorf("account", "account %q is not the local backend's account %q (backend.local.account_id)", d.Account, c.Backend.Local.AccountID)
		}
	case "aws":
		if d.Account == "" {
			k.errorf("account", "missing; with several allowed accounts, name the deployment's (one of %v)", c.Backend.AWS.AllowedAccounts)
		} else if !slices.Contains(c.Backend.AWS.AllowedAccounts, d.Account) {
			k.errorf("account", "account %q is not among backend.aws.allowed_accounts %v", d.Account, c.Backend.AWS.AllowedAccounts)
		}
	}
	v := d.CostTagValue()
	if n := len([]rune(v)); n > 256 {
		k.errorf("cost_tag", "value is %d characters long; the limit is 256", n)
	} else if !tagChars.MatchString(v) {
		k.errorf("cost_tag", "%q has characters tags may not hold; allowed: letters, digits, spaces and _ . : / = + - @", v)
	}
	if d.CostTag != "" && c.CostTag.Key == "" {
		k.errorf("cost_tag", "set, but the project has no cost tag; set cost_tag.key at the top level")
	}
	k.checkImage()
	if len(d.Units) == 0 {
		k.errorf("units", "no units; a deployment runs at least one (vm or process locally, stack or instance on aws)")
	}
	for _, name := range sortedKeys(d.Units) {
		k.checkUnit(d.Units[name], hostPorts)
	}
	k.checkUnitOrder()
	for _, name := range sortedKeys(d.Inputs) {
		k.checkInput(name, d.Inputs[name])
	}
	for i, dep := range d.DependsOn {
		p := fmt.Sprintf("depends_on[%d]", i)
		switch other := c.Deployments[dep]; {
		case other == nil:
			k.errorf(p, "deployment %q is not defined; defined: %s", dep, strings.Join(sortedKeys(c.Deployments), ", "))
		case dep == d.Name:
			k.errorf(p, "a deployment cannot depend on itself")
		case other.Template:
			k.errorf(p, "%q is a template, which is never deployed; depend on a deployment", dep)
		case slices.Index(d.DependsOn, dep) < i:
			k.errorf(p, "duplicate entry %q", dep)
		}
	}
	for i, h := range d.Hooks.PostDeploy {
		k.checkHook(fmt.Sprintf("hooks.post_deploy[%d]", i), h)
	}
	for i, h := range d.Hooks.PreDestroy {
		k.checkHook(fmt.Sprintf("hooks.pre_destroy[%d]", i), h)
	}
	names := map[string]bool{}
	for i := range d.Checks {
		p := fmt.Sprintf("checks[%d]", i)
		if names[d.Checks[i].Name] {
			k.errorf(p+".name", "duplicate check name %q", d.Checks[i].Name)
		}
		names[d.Checks[i].Name] = true
		k.checkCheck(p, &d.Checks[i])
	}
	k.checkPromotion()
}

func (k depChecker) checkImage() {
	img, c := k.dep.Image, k.c
	if img.UseCase == "" {
		k.errorf("image.use_case", "missing; name the use case whose image the deployment runs (%s)", strings.Join(c.UseCaseNames(), ", "))
		return
	}
	u, ok := c.UseCases[img.UseCase]
	if !ok {
		k.errorf("image.use_case", "use case %q is not defined; defined: %s", img.UseCase, strings.Join(c.UseCaseNames(), ", "))
		return
	}
	switch {
	case img.Arch == "" && len(u.Architectures) > 1:
		k.errorf("image.arch", "missing; use case %q has several architectures (%s): name one", img.UseCase, strings.Join(u.Architectures, ", "))
	case img.Arch != "" && !slices.Contains(u.Architectures, img.Arch):
		k.errorf("image.arch", "use case %q has no architecture %q; it has %s", img.UseCase, img.Arch, strings.Join(u.Architectures, ", "))
	}
	switch {
	case img.Channel == "" && img.ID == "":
		k.errorf("image", "set channel (resolve the image from that channel's manifest) or id (pin an image)")
	case img.Channel != "" && img.ID != "":
		k.errorf("image.id", "set channel or id, not both")
	case img.Channel != "":
		if _, ok := c.Channels[img.Channel]; !ok {
			k.errorf("image.channel", "channel %q is not defined; defined: %s", img.Channel, strings.Join(c.ChannelNames(), ", "))
		}
	case c.Backend.Type == "aws" && !amiRE.MatchString(img.ID):
		k.errorf("image.id", "%q is not an AMI id such as ami-0123456789abcdef0", img.ID)
	case c.Backend.Type == "local" && !localImageRE.MatchString(img.ID):
		k.errorf("image.id", "%q is not a local image id such as img-0123456789abcdef0", img.ID)
	}
}

var localImageRE = regexp.MustCompile(`^img-[0-9a-f]{17}$`)

func (k depChecker) checkUnit(u *Unit, hostPorts map[int]string) {
	p := joinPath("units", u.Name)
	if !unitRE.MatchString(u.Name) {
		k.keyErrorf(p, "invalid unit name %q; use a lowercase letter, then up to 30 lowercase letters, digits or dashes", u.Name)
	}
	set := 0
	for _, b := range []bool{u.VM != nil, u.Process != nil, u.Stack != nil, u.Instance != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		k.errorf(p, "set exactly one of vm, process (local backend), stack, instance (aws backend); found %d", set)
		return
	}
	kind := u.Kind()
	if want := unitKindBackends[kind]; want != k.c.Backend.Type {
		k.errorf(p+"."+kind, "%s units run on the %s backend; this project's backend is %s", kind, want, k.c.Backend.Type)
		return
	}
	for i, a := range u.After {
		switch {
		case a == u.Name:
			k.errorf(fmt.Sprintf("%s.after[%d]", p, i), "a unit cannot come after itself")
		case k.dep.Units[a] == nil:
			k.errorf(fmt.Sprintf("%s.after[%d]", p, i), "unit %q is not defined in this deployment; defined: %s", a, strings.Join(sortedKeys(k.dep.Units), ", "))
		}
	}
	switch kind {
	case UnitVM:
		k.checkVM(p+".vm", u.VM, hostPorts)
	case UnitProcess:
		k.checkProcess(p+".process", u, u.Process)
	case UnitStack:
		k.checkStack(p+".stack", u, u.Stack)
	case UnitInstance:
		k.checkInstance(p+".instance", u.Instance)
	}
}

func (k depChecker) checkVM(p string, v *VMUnit, hostPorts map[int]string) {
	if v.Memory < 256<<20 || v.Memory > 64<<30 {
		k.errorf(p+".memory", "%s is out of range; use 256MiB to 64GiB", v.Memory)
	}
	if v.CPUs < 1 || v.CPUs > 64 {
		k.errorf(p+".cpus", "%d is out of range; use 1 to 64", v.CPUs)
	}
	for _, name := range sortedKeys(v.Ports) {
		pp := joinPath(p+".ports", name)
		if !portNameRE.MatchString(name) {
			k.keyErrorf(pp, "invalid port name %q; use a lowercase letter, then lowercase letters, digits or _", name)
		}
		if port := v.Ports[name]; port < 1 || port > 65535 {
			k.errorf(pp, "guest port %d is out of range 1-65535", port)
		}
	}
	for _, name := range sortedKeys(v.HostPorts) {
		pp := joinPath(p+".host_ports", name)
		port := v.HostPorts[name]
		if _, ok := v.Ports[name]; !ok {
			k.keyErrorf(pp, "no port %q in ports; host_ports fixes the host side of a port listed there", name)
		}
		if port < 1024 || port > 65535 {
			k.errorf(pp, "host port %d is out of range 1024-65535", port)
			continue
		}
		if k.dep.Template {
			k.errorf(pp, "a template cannot fix host ports: every personal deployment made from it would want the same port")
			continue
		}
		where := k.dep.Name + "." + strings.TrimPrefix(pp, "units.")
		if other, dup := hostPorts[port]; dup {
			k.errorf(pp, "%s and %s both use host port %d; each needs its own (leave host_ports out to get a free port)", other, where, port)
		}
		hostPorts[port] = where
	}
	k.checkRestart(p+".restart", v.Restart)
	if v.StopTimeout <= 0 {
		k.errorf(p+".stop_timeout", "%s is not a positive duration", v.StopTimeout)
	}
}

func (k depChecker) checkRestart(p, r string) {
	if !slices.Contains(restartPolicies, r) {
		k.errorf(p, "unknown restart policy %q; allowed: %s", r, strings.Join(restartPolicies, ", "))
	}
}

func (k depChecker) checkProcess(p string, u *Unit, pr *ProcessUnit) {
	if len(pr.Command) == 0 || pr.Command[0] == "" {
		k.errorf(p+".command", "missing; give the program and its arguments, e.g. command: [python3, -m, http.server, \"{port.http}\"]")
	}
	for i, a := range pr.Command {
		k.checkUnitValue(fmt.Sprintf("%s.command[%d]", p, i), a, pr.Ports, u)
	}
	if pr.Dir != "" {
		k.checkFile(k.at(p+".dir"), pr.Dir, "working directory", true)
	}
	for _, name := range sortedKeys(pr.Env) {
		ep := joinPath(p+".env", name)
		if !envNameRE.MatchString(name) {
			k.keyErrorf(ep, "invalid environment variable name %q", name)
		} else if strings.HasPrefix(name, "KILN_") {
			k.keyErrorf(ep, "%q starts with KILN_, which kiln sets itself", name)
		}
		k.checkUnitValue(ep, pr.Env[name], pr.Ports, u)
	}
	k.checkList(k.at(p+".ports"), pr.Ports, func(s string) string {
		if !portNameRE.MatchString(s) {
			return fmt.Sprintf("invalid port name %q; use a lowercase letter, then lowercase letters, digits or _", s)
		}
		return ""
	})
	k.checkRestart(p+".restart", pr.Restart)
	if pr.StopTimeout <= 0 {
		k.errorf(p+".stop_timeout", "%s is not a positive duration", pr.StopTimeout)
	}
}

func (k depChecker) checkStack(p string, u *Unit, s *StackUnit) {
	k.checkFile(k.at(p+".template"), s.Template, "template", false)
	for _, name := range sortedKeys(s.Parameters) {
		pp := joinPath(p+".parameters", name)
		if !stackParamRE.MatchString(name) {
			k.keyErrorf(pp, "invalid parameter name %q; CloudFormation parameter names are letters and digits", name)
		}
		k.checkUnitValue(pp, s.Parameters[name], nil, u)
	}
	k.checkList(k.at(p+".capabilities"), s.Capabilities, func(c string) string {
		if !slices.Contains(stackCapabilities, c) {
			return fmt.Sprintf("unknown capability %q; allowed: %s", c, strings.Join(stackCapabilities, ", "))
		}
		return ""
	})
}

func (k depChecker) checkInstance(p string, in *InstanceUnit) {
	if !instanceTypeRE.MatchString(in.InstanceType) {
		k.errorf(p+".instance_type", "invalid instance type %q; use a type such as t3.micro", in.InstanceType)
	}
	if in.Count < 1 || in.Count > 100 {
		k.errorf(p+".count", "%d is out of range; use 1 to 100", in.Count)
	}
	if in.SubnetID != "" && !subnetRE.MatchString(in.SubnetID) {
		k.errorf(p+".subnet_id", "invalid subnet id %q; expected subnet- and 8 or 17 hex digits", in.SubnetID)
	}
	k.checkList(k.at(p+".security_groups"), in.SecurityGroups, func(s string) string {
		if !sgRE.MatchString(s) {
			return fmt.Sprintf("invalid security group id %q; expected sg- and 8 or 17 hex digits", s)
		}
		return ""
	})
	if in.UserData != "" {
		k.checkFile(k.at(p+".user_data"), in.UserData, "user data file", false)
	}
}

// checkValue checks the placeholders of a deployment value. ports are the
// unit's own port names ({port.NAME}); nil where there are none.
func (k depChecker) checkValue(p, s string, ports []string) {
	names, err := Placeholders(s)
	if err != nil {
		k.errorf(p, "%v", err)
		return
	}
	for _, name := range names {
		if msg := k.placeholderProblem(name, ports); msg != "" {
			k.errorf(p, "%s", msg)
		}
	}
}

// checkUnitValue is checkValue for a unit's setting: another unit's
// output it uses must come from a unit it is applied after.
func (k depChecker) checkUnitValue(p, s string, ports []string, u *Unit) {
	k.checkValue(p, s, ports)
	names, _ := Placeholders(s)
	for _, name := range names {
		root, rest, _ := strings.Cut(name, ".")
		if rest == "" || root == "inputs" || root == "port" || k.dep.Units[root] == nil {
			continue
		}
		if root == u.Name {
			k.errorf(p, "{%s}: a unit cannot use its own outputs", name)
		} else if !slices.Contains(u.After, root) {
			k.errorf(p, "{%s}: unit %s uses unit %s's outputs; list %s in its after", name, u.Name, root, root)
		}
	}
}

// placeholderProblem says what is wrong with a placeholder name, or "".
func (k depChecker) placeholderProblem(name string, ports []string) string {
	if slices.Contains(releasePlaceholders, name) {
		return ""
	}
	root, rest, _ := strings.Cut(name, ".")
	switch {
	case root == "inputs":
		if k.dep.Inputs[rest] == nil {
			return fmt.Sprintf("{%s}: the deployment has no input %q (inputs: %s)", name, rest, strings.Join(sortedKeys(k.dep.Inputs), ", "))
		}
		return ""
	case root == "port":
		if !slices.Contains(ports, rest) {
			return fmt.Sprintf("{%s}: the unit has no port %q; list it in the unit's ports", name, rest)
		}
		return ""
	case rest != "" && k.dep.Units[root] != nil:
		return "" // a unit's output, known once the unit is up
	}
	return fmt.Sprintf("unknown placeholder {%s}; allowed: %s, {inputs.NAME}, {port.NAME} and {UNIT.OUTPUT} with UNIT one of the deployment's units (%s)",
		name, listPlaceholders(releasePlaceholders), strings.Join(sortedKeys(k.dep.Units), ", "))
}

func (k depChecker) checkInput(name string, in *Input) {
	p := joinPath("inputs", name)
	if !inputRE.MatchString(name) {
		k.keyErrorf(p, "invalid input name %q; use a lowercase letter, then up to 62 lowercase letters, digits or _", name)
	}
	set := 0
	for _, b := range []bool{in.Value != nil, in.From != "", in.Secret != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		k.errorf(p, "set exactly one of value (a literal), from (DEPLOYMENT.OUTPUT) and secret (env, file, ssm or secrets_manager); found %d", set)
		return
	}
	switch {
	case in.Value != nil:
		if names, err := Placeholders(*in.Value); err != nil || len(names) > 0 {
			k.errorf(p+".value", "a literal may not hold placeholders (write {{ and }} for braces)")
		}
	case in.From != "":
		dep, out, ok := strings.Cut(in.From, ".")
		switch {
		case !ok || out == "":
			k.errorf(p+".from", "%q is not DEPLOYMENT.OUTPUT, e.g. shared.db.endpoint", in.From)
		case !slices.Contains(k.dep.DependsOn, dep):
			k.errorf(p+".from", "deployment %q is not in depends_on %v; list it there so it is deployed first", dep, k.dep.DependsOn)
		}
	case in.Secret != nil:
		k.checkSecret(p+".secret", in.Secret)
	}
}

func (k depChecker) checkSecret(p string, s *SecretRef) {
	set := 0
	for _, v := range []string{s.Env, s.File, s.SSM, s.SecretsManager} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		k.errorf(p, "set exactly one of env, file, ssm and secrets_manager; found %d", set)
		return
	}
	switch {
	case s.Env != "" && !envNameRE.MatchString(s.Env):
		k.errorf(p+".env", "invalid environment variable name %q", s.Env)
	case s.File != "" && strings.ContainsRune(s.File, 0):
		k.errorf(p+".file", "invalid path")
	case s.SSM != "" && (!ssmNameChars.MatchString(s.SSM) || len(s.SSM) > 2048):
		k.errorf(p+".ssm", "invalid SSM parameter name %q", s.SSM)
	case s.SecretsManager != "" && len(s.SecretsManager) > 2048:
		k.errorf(p+".secrets_manager", "secret id is %d characters long; the limit is 2048", len(s.SecretsManager))
	}
	if s.Region != "" && !ValidAWSRegion(s.Region) {
		k.errorf(p+".region", "unknown AWS region %q", s.Region)
	}
	if s.Region != "" && s.SSM == "" && s.SecretsManager == "" {
		k.errorf(p+".region", "only ssm and secrets_manager secrets are read from a region")
	}
	if (s.SSM != "" || s.SecretsManager != "") && s.Region == "" && k.c.Backend.Type != "aws" {
		k.errorf(p+".region", "missing; on the %s backend name the AWS region to read the secret from", k.c.Backend.Type)
	}
}

func (k depChecker) checkHook(p string, h Hook) {
	if len(h.Command) == 0 || h.Command[0] == "" {
		k.errorf(p+".command", "missing; give the program and its arguments, e.g. command: [scripts/smoke.sh]")
	}
	if h.Timeout <= 0 {
		k.errorf(p+".timeout", "%s is not a positive duration", h.Timeout)
	}
}

func (k depChecker) checkCheck(p string, ch *Check) {
	switch {
	case ch.HTTP == nil && len(ch.Command) == 0:
		k.errorf(p, "set http (a request and what its answer must be) or command (a program that exits 0)")
	case ch.HTTP != nil && len(ch.Command) > 0:
		k.errorf(p, "set http or command, not both")
	case ch.HTTP != nil:
		k.checkHTTP(p+".http", ch.HTTP)
	default:
		if ch.Command[0] == "" {
			k.errorf(p+".command[0]", "empty program name")
		}
		for i, a := range ch.Command {
			k.checkValue(fmt.Sprintf("%s.command[%d]", p, i), a, nil)
		}
	}
	if ch.Count < 1 {
		k.errorf(p+".count", "%d measurements; use 1 or more", ch.Count)
	}
	if ch.FailureLimit < 0 {
		k.errorf(p+".failure_limit", "%d is negative", ch.FailureLimit)
	} else if ch.Count >= 1 && ch.FailureLimit >= ch.Count {
		k.errorf(p+".failure_limit", "%d tolerates every one of the %d measurements failing; use less than count", ch.FailureLimit, ch.Count)
	}
	if ch.ConsecutiveErrorLimit != nil && *ch.ConsecutiveErrorLimit < 0 {
		k.errorf(p+".consecutive_error_limit", "%d is negative", *ch.ConsecutiveErrorLimit)
	}
	if ch.Interval <= 0 {
		k.errorf(p+".interval", "%s is not a positive duration", ch.Interval)
	}
	if ch.Timeout <= 0 {
		k.errorf(p+".timeout", "%s is not a positive duration", ch.Timeout)
	}
	if ch.InitialDelay < 0 {
		k.errorf(p+".initial_delay", "%s is negative", ch.InitialDelay)
	}
}

func (k depChecker) checkHTTP(p string, h *HTTPCheck) {
	k.checkValue(p+".url", h.URL, nil)
	if names, err := Placeholders(h.URL); err == nil && len(names) == 0 {
		if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			k.errorf(p+".url", "%q is not an http or https URL", h.URL)
		}
	} else if h.URL == "" {
		k.errorf(p+".url", "missing; e.g. url: \"{web.url.http}/health\"")
	}
	for _, name := range sortedKeys(h.Headers) {
		k.checkValue(joinPath(p+".headers", name), h.Headers[name], nil)
	}
	if h.Status < 100 || h.Status > 599 {
		k.errorf(p+".status", "%d is not an HTTP status code (100-599)", h.Status)
	}
	switch {
	case h.JSONField != "" && !jsonFieldRE.MatchString(h.JSONField):
		k.errorf(p+".json_field", "%q is not a field path such as version or build.id", h.JSONField)
	case h.JSONField != "" && h.Equals == "":
		k.errorf(p+".equals", "missing; json_field needs the value it must equal, e.g. \"{version}\"")
	case h.JSONField == "" && h.Equals != "":
		k.errorf(p+".json_field", "missing; equals compares the JSON field named here")
	}
	k.checkValue(p+".equals", h.Equals, nil)
	if h.Body != "" {
		if _, err := regexp.Compile(h.Body); err != nil {
			k.errorf(p+".body", "not a regular expression: %v", err)
		}
	}
}

func (k depChecker) checkPromotion() {
	pr, c, d := k.dep.Promote, k.c, k.dep
	if pr.From != "" {
		switch src := c.Deployments[pr.From]; {
		case src == nil:
			k.errorf("promote.from", "deployment %q is not defined; defined: %s", pr.From, strings.Join(sortedKeys(c.Deployments), ", "))
		case pr.From == d.Name:
			k.errorf("promote.from", "a deployment cannot be promoted from itself")
		case src.Template:
			k.errorf("promote.from", "%q is a template, which is never deployed", pr.From)
		}
	}
	if pr.Soak < 0 {
		k.errorf("promote.soak", "%s is negative", pr.Soak)
	}
	for i, w := range pr.Windows {
		p := fmt.Sprintf("promote.windows[%d]", i)
		k.checkList(k.at(p+".days"), w.Days, func(day string) string {
			if !slices.Contains(weekdays, day) {
				return fmt.Sprintf("unknown day %q; allowed: %s", day, strings.Join(weekdays, ", "))
			}
			return ""
		})
		for _, f := range []struct{ name, v string }{{"start", w.Start}, {"end", w.End}} {
			if f.v != "" && !clockRE.MatchString(f.v) {
				k.errorf(p+"."+f.name, "%q is not a time of day HH:MM (00:00 to 24:00)", f.v)
			}
		}
		if clockRE.MatchString(w.Start) && clockRE.MatchString(w.End) && w.End <= w.Start {
			k.errorf(p+".end", "%s is not after start %s; a window ending after midnight is two windows", w.End, w.Start)
		}
		if _, err := time.LoadLocation(w.Timezone); err != nil || w.Timezone == "" || w.Timezone == "Local" {
			k.errorf(p+".timezone", "unknown time zone %q; use an IANA name such as UTC or Europe/Berlin", w.Timezone)
		}
	}
}

// checkUnitOrder reports a cycle in the units' after lists.
func (k depChecker) checkUnitOrder() {
	if _, cycle := unitOrder(k.dep.Units); cycle != nil {
		k.errorf(joinPath("units", cycle[0])+".after", "units wait for each other in a circle: %s", strings.Join(cycle, " -> "))
	}
}

// checkDependencyCycles reports deployments that depend on each other in
// a circle.
func (k *checker) checkDependencyCycles() {
	deps := k.c.Deployments
	state := map[string]int{} // 0 new, 1 on the path, 2 done
	var path []string
	var visit func(string) bool
	visit = func(n string) bool {
		switch state[n] {
		case 1:
			i := slices.Index(path, n)
			k.errorf(joinPath("deployments", path[len(path)-1])+".depends_on",
				"deployments depend on each other in a circle: %s -> %s", strings.Join(path[i:], " -> "), n)
			return true
		case 2:
			return false
		}
		state[n] = 1
		path = append(path, n)
		for _, m := range deps[n].DependsOn {
			if m != n && deps[m] != nil && visit(m) {
				return true
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		return false
	}
	for _, n := range sortedKeys(deps) {
		if visit(n) {
			return
		}
	}
}

// unitOrder returns the units' names in the order they are applied: each
// after the units its After names, otherwise by name. On a cycle it
// returns the cycle instead.
func unitOrder(units map[string]*Unit) (order, cycle []string) {
	state := map[string]int{}
	var path []string
	var visit func(string) bool
	visit = func(n string) bool {
		switch state[n] {
		case 1:
			i := slices.Index(path, n)
			cycle = append(slices.Clone(path[i:]), n)
			return false
		case 2:
			return true
		}
		state[n] = 1
		path = append(path, n)
		after := slices.Clone(units[n].After)
		slices.Sort(after)
		for _, m := range after {
			if units[m] != nil && !visit(m) {
				return false
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		order = append(order, n)
		return true
	}
	for _, n := range sortedKeys(units) {
		if !visit(n) {
			return nil, cycle
		}
	}
	return order, nil
}
