package config

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

var (
	useCaseRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	suiteRE      = regexp.MustCompile(`^[a-z]+$`)
	packageRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?$`)
	amiRE        = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	ownerIDRE    = regexp.MustCompile(`^(\d{12}|amazon|aws-marketplace|self)$`)
	accountRE    = regexp.MustCompile(`^\d{12}$`)
	orgRE        = regexp.MustCompile(`^arn:aws:organizations::\d{12}:organization/o-[a-z0-9]{10,32}$`)
	ouRE         = regexp.MustCompile(`^arn:aws:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$`)
	modeRE       = regexp.MustCompile(`^[0-7]{3,4}$`)
	ownerRE      = regexp.MustCompile(`^([a-z_][a-z0-9_-]{0,31}|\d{1,10}):([a-z_][a-z0-9_-]{0,31}|\d{1,10})$`)
	ansibleVarRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

var architectures = []string{"x86_64", "arm64"}

// exportFormats lists the export formats each backend can make.
var exportFormats = map[string][]string{
	"local": {"qcow2", "vmdk", "vhd", "raw"},
	"aws":   {"vmdk", "vhd", "raw"},
}

const (
	minDiskSize = Size(1 << 30)
	maxDiskSize = Size(2 << 40)
	// maxPublicDeprecation is the longest deprecation delay EC2 accepts for
	// a public image.
	maxPublicDeprecation = Duration(730 * day)
)

// checkUseCase checks one use case. backendOK says whether backend.type is
// valid; the checks that depend on the backend are skipped when it is not.
func (k *checker) checkUseCase(u *UseCase, backendOK bool) {
	p := joinPath("use_cases", u.Name)
	if !useCaseRE.MatchString(u.Name) {
		k.keyErrorf(p, "invalid use case name %q; use up to 64 lowercase letters, digits, dots, dashes and underscores, starting with a letter or digit", u.Name)
	}

	if len(u.Architectures) == 0 {
		k.errorf(p+".architectures", "use case has no architecture; allowed: %s", strings.Join(architectures, ", "))
	}
	k.checkList(p+".architectures", u.Architectures, func(a string) string {
		if !slices.Contains(architectures, a) {
			return fmt.Sprintf("unknown architecture %q; allowed: %s", a, strings.Join(architectures, ", "))
		}
		return ""
	})
	k.checkList(p+".regions", u.Regions, func(r string) string {
		if !slices.Contains(k.c.Regions, r) {
			return fmt.Sprintf("region %q is not among regions %s", r, k.regionList())
		}
		return ""
	})

	if backendOK && u.Build.Disk == "" {
		k.checkBase(p+".base", u.Base, u.Build.Method == BuildUpload)
	}
	for i, s := range u.Provision {
		k.checkStep(fmt.Sprintf("%s.provision[%d]", p, i), s)
	}
	if len(u.Tests) == 0 {
		k.errorf(p+".tests", "use case has no tests; a candidate must be testable: list scripts to run inside the booted image, e.g. tests: [tests/boot.sh]")
	}
	for i, t := range u.Tests {
		k.checkFile(fmt.Sprintf("%s.tests[%d]", p, i), t, "test script", false)
	}
	k.checkPublish(p+".publish", u.Publish)
	if backendOK {
		k.checkBuild(p+".build", u)
	}

	if formats, ok := exportFormats[k.c.Backend.Type]; ok {
		k.checkList(p+".exports", u.Exports, func(f string) string {
			if !slices.Contains(formats, f) {
				return fmt.Sprintf("export format %q is not available with the %s backend; allowed: %s", f, k.c.Backend.Type, strings.Join(formats, ", "))
			}
			return ""
		})
	}
	if u.DiskSize < minDiskSize || u.DiskSize > maxDiskSize {
		k.errorf(p+".disk_size", "disk size %s is out of range; allowed: %s to %s", u.DiskSize, minDiskSize, maxDiskSize)
	}
	if u.Schedule != "" {
		if err := checkCron(u.Schedule); err != nil {
			k.errorf(p+".schedule", "%v", err)
		}
	}
	if r, bad := badImageNameChar(u.Version); bad {
		k.errorf(p+".version", "version %q has the character %q, which image names may not hold; allowed: %s", u.Version, r, imageNameChars)
	}
}

// checkBase checks where a build starts from, which depends on the backend;
// localBuild says the disk is built on this machine (aws, method upload).
func (k *checker) checkBase(p string, b Base, localBuild bool) {
	if k.c.Backend.Type == "local" || localBuild {
		if !suiteRE.MatchString(b.Suite) {
			k.errorf(p+".suite", "suite %q is not a Debian suite name such as bookworm", b.Suite)
		}
		k.checkList(p+".packages", b.Packages, func(pkg string) string {
			if !packageRE.MatchString(pkg) {
				return fmt.Sprintf("%q is not a Debian package name", pkg)
			}
			return ""
		})
		return
	}

	var sources []string
	for _, s := range []struct{ name, value string }{{"ami", b.AMI}, {"name_filter", b.NameFilter}, {"ssm_parameter", b.SSMParameter}} {
		if s.value != "" {
			sources = append(sources, s.name)
		}
	}
	const choose = "set exactly one of ami, name_filter (with owner) or ssm_parameter"
	switch len(sources) {
	case 0:
		k.errorf(p, "no base image; %s", choose)
	case 1:
	default:
		k.errorf(p, "base sets %s; %s", joinAnd(sources), choose)
	}
	if b.AMI != "" && !amiRE.MatchString(b.AMI) {
		k.errorf(p+".ami", "%q is not an AMI id such as ami-0123456789abcdef0", b.AMI)
	}
	switch {
	case b.NameFilter != "" && b.Owner == "":
		k.errorf(p+".owner", "missing; name_filter needs the owner of the images: an account id, amazon, aws-marketplace or self")
	case b.NameFilter == "" && b.Owner != "":
		k.errorf(p+".owner", "owner is used only with name_filter")
	case b.Owner != "" && !ownerIDRE.MatchString(b.Owner):
		k.errorf(p+".owner", "owner %q is not a 12-digit account id, amazon, aws-marketplace or self", b.Owner)
	}
	if b.SSMParameter != "" && !strings.HasPrefix(b.SSMParameter, "/") {
		k.errorf(p+".ssm_parameter", "%q must start with \"/\", e.g. /aws/service/debian/release/bookworm/latest/amd64", b.SSMParameter)
	}
}

// checkStep checks one provisioning step.
func (k *checker) checkStep(p string, s Step) {
	var kinds []string
	if s.Shell != "" {
		kinds = append(kinds, "shell")
	}
	if s.File != nil {
		kinds = append(kinds, "file")
	}
	if s.Ansible != nil {
		kinds = append(kinds, "ansible")
	}
	switch len(kinds) {
	case 0:
		k.errorf(p, "step sets none of shell, file, ansible; set exactly one")
	case 1:
	default:
		k.errorf(p, "step sets %s; set exactly one of shell, file, ansible", joinAnd(kinds))
	}

	if s.Shell != "" {
		k.checkFile(p+".shell", s.Shell, "script", false)
	}
	if f := s.File; f != nil {
		fp := p + ".file"
		k.checkFile(fp+".source", f.Source, "source", true)
		switch d := f.Destination; {
		case d == "":
			k.errorf(fp+".destination", "missing; give the absolute path in the image, such as /etc/motd")
		case !path.IsAbs(d):
			k.errorf(fp+".destination", "destination %q must be an absolute path in the image, such as /etc/motd", d)
		case path.Clean(d) != d:
			k.errorf(fp+".destination", "destination %q is not clean; write %q", d, path.Clean(d))
		}
		if f.Mode != "" && !modeRE.MatchString(f.Mode) {
			k.errorf(fp+".mode", "mode %q is not an octal mode from 0000 to 7777, such as 0644", f.Mode)
		}
		if !ownerRE.MatchString(f.Owner) {
			k.errorf(fp+".owner", "owner %q is not user:group or uid:gid, such as root:root or 1000:1000", f.Owner)
		}
	}
	if a := s.Ansible; a != nil {
		ap := p + ".ansible"
		k.checkFile(ap+".playbook", a.Playbook, "playbook", false)
		for _, name := range sortedKeys(a.ExtraVars) {
			if !ansibleVarRE.MatchString(name) {
				k.keyErrorf(joinPath(ap+".extra_vars", name), "%q is not a valid Ansible variable name; use letters, digits and underscores, not starting with a digit", name)
			}
		}
	}
}

// checkPublish checks who a use case's images are shared with and when they
// are deprecated.
func (k *checker) checkPublish(p string, pub Publish) {
	k.checkList(p+".accounts", pub.Accounts, func(a string) string {
		if !accountRE.MatchString(a) {
			return fmt.Sprintf("account %q is not a 12-digit AWS account id", a)
		}
		return ""
	})
	k.checkList(p+".organizations", pub.Organizations, func(a string) string {
		if !orgRE.MatchString(a) {
			return fmt.Sprintf("%q is not an organization ARN such as arn:aws:organizations::123456789012:organization/o-abcd123456", a)
		}
		return ""
	})
	k.checkList(p+".organizational_units", pub.OrganizationalUnits, func(a string) string {
		if !ouRE.MatchString(a) {
			return fmt.Sprintf("%q is not an organizational unit ARN such as arn:aws:organizations::123456789012:ou/o-abcd123456/ou-ab12-cdef3456", a)
		}
		return ""
	})
	switch d := pub.DeprecateAfter; {
	case d < 0:
		k.errorf(p+".deprecate_after", "%s is negative; leave it out or use 0 for no deprecation", d)
	case d > maxPublicDeprecation && pub.Public && k.c.Backend.Type == "aws":
		k.errorf(p+".deprecate_after", "%s is more than %s (2 years), the most AWS allows for public images", d, maxPublicDeprecation)
	}
}
