package config

import (
	"strings"
	"testing"
)

// localBase is a minimal valid config for the local backend, six lines
// long; cases append lines to it (top-level fields, or use case fields
// indented by four spaces).
const localBase = `project: demo
regions: [r1, r2]
use_cases:
  u:
    architectures: [x86_64]
    tests: [t.sh]
`

// awsBase is a minimal valid config for the aws backend, eight lines long.
const awsBase = `project: demo
backend: {type: aws, aws: {allowed_accounts: ["123456789012"]}}
regions: [us-east-1, eu-west-1]
use_cases:
  u:
    architectures: [x86_64]
    base: {ami: ami-12345678}
    tests: [t.sh]
`

// awsWith returns awsBase with its backend line (line 2) replaced.
func awsWith(backendLine string) string {
	return strings.Replace(awsBase, `backend: {type: aws, aws: {allowed_accounts: ["123456789012"]}}`, backendLine, 1)
}

// awsBaseWith returns awsBase with the use case's base line (line 7) replaced.
func awsBaseWith(baseLine string) string {
	return strings.Replace(awsBase, "    base: {ami: ami-12345678}", baseLine, 1)
}

type errorCase struct {
	name string
	doc  string
	want []string // exact errors, in order; DIR stands for the project directory
}

// validationCases cover every validation rule. They also seed FuzzParse.
var validationCases = []errorCase{
	// project
	{"project missing", "regions: [r1, r2]\nuse_cases: {u: {architectures: [x86_64], tests: [t.sh]}}\n", []string{
		"kiln.yaml:1:1: project: missing; name the project with lowercase letters, digits and dashes, e.g. project: demo"}},
	{"project pattern", strings.Replace(localBase, "project: demo", "project: Demo_1", 1), []string{
		`kiln.yaml:1:10: project: invalid project name "Demo_1"; use up to 63 lowercase letters, digits and dashes, starting with a letter or digit`}},
	{"project too long", strings.Replace(localBase, "project: demo", "project: "+strings.Repeat("a", 64), 1), []string{
		`kiln.yaml:1:10: project: invalid project name "` + strings.Repeat("a", 64) + `"; use up to 63 lowercase letters, digits and dashes, starting with a letter or digit`}},

	// backend.type
	{"backend type", localBase + "backend: {type: gce}\n", []string{
		`kiln.yaml:7:17: backend.type: unknown backend "gce"; allowed: local, aws`}},

	// regions
	{"regions missing", "project: demo\nuse_cases: {u: {architectures: [x86_64], tests: [t.sh]}}\n", []string{
		"kiln.yaml:1:1: regions: no regions; list at least one, e.g. regions: [local-a]"}},
	{"regions empty", strings.Replace(localBase, "regions: [r1, r2]", "regions: []", 1), []string{
		"kiln.yaml:2:10: regions: no regions; list at least one, e.g. regions: [local-a]"}},
	{"region duplicate", strings.Replace(localBase, "regions: [r1, r2]", "regions: [r1, r1]", 1), []string{
		`kiln.yaml:2:15: regions[1]: duplicate region "r1"`}},
	{"local region pattern", strings.Replace(localBase, "regions: [r1, r2]", "regions: [r1, R_2]", 1), []string{
		`kiln.yaml:2:15: regions[1]: invalid region name "R_2"; use a lowercase letter, then up to 62 lowercase letters, digits or dashes`}},
	{"aws region unknown", strings.Replace(awsBase, "regions: [us-east-1, eu-west-1]", "regions: [us-east-1, us-east-9]", 1), []string{
		`kiln.yaml:3:22: regions[1]: unknown AWS region "us-east-9"`}},
	{"aws region in local syntax", strings.Replace(awsBase, "regions: [us-east-1, eu-west-1]", "regions: [local-a]", 1), []string{
		`kiln.yaml:3:11: regions[0]: unknown AWS region "local-a"`}},
	{"build region", localBase + "build_region: x\n", []string{
		`kiln.yaml:7:15: build_region: build region "x" is not among regions [r1 r2]`}},

	// cost_tag
	{"cost tag without value", localBase + "cost_tag: {key: team}\n", []string{
		`kiln.yaml:7:1: cost_tag.value: missing; cost_tag.key "team" needs a value (set both or neither)`}},
	{"cost tag without key", localBase + "cost_tag: {value: x}\n", []string{
		`kiln.yaml:7:1: cost_tag.key: missing; cost_tag.value "x" needs a key (set both or neither)`}},
	{"cost tag aws prefix", localBase + "cost_tag: {key: 'aws:team', value: x}\n", []string{
		`kiln.yaml:7:17: cost_tag.key: key "aws:team" starts with "aws:", which is reserved; choose another prefix`}},
	{"cost tag kiln prefix", localBase + "cost_tag: {key: 'KILN:x', value: x}\n", []string{
		`kiln.yaml:7:17: cost_tag.key: key "KILN:x" starts with "kiln:", which is reserved; choose another prefix`}},
	{"cost tag key length", localBase + "cost_tag: {key: " + strings.Repeat("k", 129) + ", value: x}\n", []string{
		"kiln.yaml:7:17: cost_tag.key: key is 129 characters long; the limit is 128"}},
	{"cost tag value length", localBase + "cost_tag: {key: k, value: " + strings.Repeat("v", 257) + "}\n", []string{
		"kiln.yaml:7:27: cost_tag.value: value is 257 characters long; the limit is 256"}},
	{"cost tag characters", localBase + "cost_tag: {key: k, value: 'a;b'}\n", []string{
		`kiln.yaml:7:27: cost_tag.value: "a;b" has characters tags may not hold; allowed: letters, digits, spaces and _ . : / = + - @`}},

	// naming
	{"naming unknown placeholder", localBase + "naming: {candidate: '{use_case}-{foo}-{asset_id}'}\n", []string{
		`kiln.yaml:7:21: naming.candidate: unknown placeholder "{foo}" in "{use_case}-{foo}-{asset_id}"; allowed: {arch}, {asset_id}, {date}, {use_case}, {version}`}},
	{"naming unclosed", localBase + "naming: {release: '{use_case}-{version'}\n", []string{
		`kiln.yaml:7:19: naming.release: "{use_case}-{version" has an unclosed "{"; allowed placeholders: {arch}, {asset_id}, {date}, {use_case}, {version}`}},
	{"candidate lacks asset id", localBase + "naming: {candidate: '{use_case}-{date}'}\n", []string{
		`kiln.yaml:7:21: naming.candidate: "{use_case}-{date}" lacks {asset_id}; candidate names need it so reruns and cleanup find a run's images by name`}},
	{"release not unique", localBase + "naming: {release: '{use_case}-{arch}'}\n", []string{
		`kiln.yaml:7:19: naming.release: "{use_case}-{arch}" has neither {asset_id} nor {version}; release names must differ from one release to the next`}},
	{"naming character", localBase + "naming: {candidate: '{use_case}!{asset_id}'}\n", []string{
		`kiln.yaml:7:21: naming.candidate: "{use_case}!{asset_id}" has the character '!', which image names may not hold; allowed: letters, digits, spaces and ( ) [ ] . / - _ ' @`}},
	{"naming too long", localBase + "naming: {candidate: '{asset_id}" + strings.Repeat("x", 101) + "'}\n", []string{
		`kiln.yaml:7:21: naming.candidate: names would be 129 characters long for use case "u" (x86_64), more than the limit of 128`}},
	{"naming too short", localBase + "    version: '1'\nnaming: {release: 'v{version}'}\n", []string{
		`kiln.yaml:8:19: naming.release: names would be only 2 characters long for use case "u" ("v1"); the minimum is 3`}},
	{"release lacks use case", "project: demo\nregions: [r1, r2]\nuse_cases:\n  u: {architectures: [x86_64], tests: [t.sh]}\n  v: {architectures: [x86_64], tests: [t.sh]}\nnaming: {release: '{arch}-{version}'}\n", []string{
		`kiln.yaml:6:19: naming.release: "{arch}-{version}" lacks {use_case}; with several use cases, their releases would get the same names`}},
	{"release lacks arch", strings.Replace(localBase, "[x86_64]", "[x86_64, arm64]", 1) + "naming: {release: '{use_case}-{version}'}\n", []string{
		`kiln.yaml:7:19: naming.release: "{use_case}-{version}" lacks {arch}; use case "u" has several architectures, whose releases would get the same names`}},

	// channels
	{"channel name", localBase + "channels: {Latest: {}}\n", []string{
		`kiln.yaml:7:12: channels.Latest: invalid channel name "Latest"; use a lowercase letter, then up to 31 lowercase letters, digits or dashes`}},
	{"manifest absolute", localBase + "channels: {latest: {manifest: /tmp/x.json}}\n", []string{
		`kiln.yaml:7:31: channels.latest.manifest: manifest path "/tmp/x.json" must be relative to the config's directory`}},
	{"manifest outside", localBase + "channels: {latest: {manifest: ../x.json}}\n", []string{
		`kiln.yaml:7:31: channels.latest.manifest: manifest path "../x.json" leads outside the config's directory`}},
	{"manifest extension", localBase + "channels: {latest: {manifest: m.yaml}}\n", []string{
		`kiln.yaml:7:31: channels.latest.manifest: manifest path "m.yaml" must end in .json`}},
	{"manifest shared", localBase + "channels: {a: {manifest: m.json}, b: {manifest: ./m.json}}\n", []string{
		`kiln.yaml:7:49: channels.b.manifest: channels a and b both use manifest "./m.json"; each channel needs its own`}},
	{"min interval", localBase + "channels: {latest: {min_interval: -1h}}\n", []string{
		"kiln.yaml:7:35: channels.latest.min_interval: -1h is negative"}},

	// cleanup
	{"confirm above", localBase + "cleanup: {confirm_above: -1}\n", []string{
		"kiln.yaml:7:26: cleanup.confirm_above: -1 is negative; use 0 to confirm every cleanup"}},

	// use cases
	{"no use cases", "project: demo\nregions: [r1]\n", []string{
		"kiln.yaml:1:1: use_cases: no use cases; define at least one (`kiln init` writes an example)"}},
	{"empty use cases", "project: demo\nregions: [r1]\nuse_cases: {}\n", []string{
		"kiln.yaml:3:12: use_cases: no use cases; define at least one (`kiln init` writes an example)"}},
	{"use case name", strings.Replace(localBase, "  u:", "  U!:", 1), []string{
		`kiln.yaml:4:3: use_cases."U!": invalid use case name "U!"; use up to 64 lowercase letters, digits, dots, dashes and underscores, starting with a letter or digit`}},
	{"no architecture", strings.Replace(localBase, "    architectures: [x86_64]\n", "", 1), []string{
		"kiln.yaml:4:3: use_cases.u.architectures: use case has no architecture; allowed: x86_64, arm64"}},
	{"unknown architecture", strings.Replace(localBase, "[x86_64]", "[x86_64, amd64]", 1), []string{
		`kiln.yaml:5:29: use_cases.u.architectures[1]: unknown architecture "amd64"; allowed: x86_64, arm64`}},
	{"duplicate architecture", strings.Replace(localBase, "[x86_64]", "[x86_64, x86_64]", 1), []string{
		`kiln.yaml:5:29: use_cases.u.architectures[1]: duplicate entry "x86_64"`}},
	{"use case region", localBase + "    regions: [r3]\n", []string{
		`kiln.yaml:7:15: use_cases.u.regions[0]: region "r3" is not among regions [r1 r2]`}},

	// provisioning steps
	{"step without kind", localBase + "    provision: [{name: x}]\n", []string{
		"kiln.yaml:7:17: use_cases.u.provision[0]: step sets none of shell, file, ansible; set exactly one"}},
	{"step with two kinds", localBase + "    provision: [{shell: s.sh, file: {source: f.txt, destination: /f}}]\n", []string{
		"kiln.yaml:7:17: use_cases.u.provision[0]: step sets shell and file; set exactly one of shell, file, ansible"}},
	{"step with three kinds", localBase + "    provision: [{shell: s.sh, file: {source: f.txt, destination: /f}, ansible: {playbook: p.yml}}]\n", []string{
		"kiln.yaml:7:17: use_cases.u.provision[0]: step sets shell, file and ansible; set exactly one of shell, file, ansible"}},
	{"shell script missing", localBase + "    provision: [{shell: nope.sh}]\n", []string{
		`kiln.yaml:7:25: use_cases.u.provision[0].shell: script "nope.sh" not found: DIR/nope.sh does not exist`}},
	{"shell script is a directory", localBase + "    provision: [{shell: dir}]\n", []string{
		`kiln.yaml:7:25: use_cases.u.provision[0].shell: script "dir" is a directory (DIR/dir); expected a file`}},
	{"file step fields", localBase + lines(
		"    provision:",
		"      - file:",
		"          source: nope.txt",
		"          destination: etc/motd",
		"          mode: '999'",
		"          owner: root",
	), []string{
		`kiln.yaml:9:19: use_cases.u.provision[0].file.source: source "nope.txt" not found: DIR/nope.txt does not exist`,
		`kiln.yaml:10:24: use_cases.u.provision[0].file.destination: destination "etc/motd" must be an absolute path in the image, such as /etc/motd`,
		`kiln.yaml:11:17: use_cases.u.provision[0].file.mode: mode "999" is not an octal mode from 0000 to 7777, such as 0644`,
		`kiln.yaml:12:18: use_cases.u.provision[0].file.owner: owner "root" is not user:group or uid:gid, such as root:root or 1000:1000`,
	}},
	{"file step destination", localBase + lines(
		"    provision:",
		"      - file: {source: dir, destination: /etc//x/../y}",
		"      - file: {source: f.txt}",
	), []string{
		`kiln.yaml:8:42: use_cases.u.provision[0].file.destination: destination "/etc//x/../y" is not clean; write "/etc/y"`,
		"kiln.yaml:9:9: use_cases.u.provision[1].file.destination: missing; give the absolute path in the image, such as /etc/motd",
	}},
	{"file step mode too long", localBase + "    provision: [{file: {source: f.txt, destination: /f, mode: '07777'}}]\n", []string{
		`kiln.yaml:7:63: use_cases.u.provision[0].file.mode: mode "07777" is not an octal mode from 0000 to 7777, such as 0644`}},
	{"ansible step", localBase + "    provision: [{ansible: {playbook: nope.yml, extra_vars: {1x: a, ok_1: b}}}]\n", []string{
		`kiln.yaml:7:38: use_cases.u.provision[0].ansible.playbook: playbook "nope.yml" not found: DIR/nope.yml does not exist`,
		`kiln.yaml:7:61: use_cases.u.provision[0].ansible.extra_vars.1x: "1x" is not a valid Ansible variable name; use letters, digits and underscores, not starting with a digit`,
	}},
	{"ansible without playbook", localBase + "    provision: [{ansible: {}}]\n", []string{
		"kiln.yaml:7:18: use_cases.u.provision[0].ansible.playbook: missing; give the playbook's path relative to the config's directory"}},

	// tests
	{"no tests", strings.Replace(localBase, "    tests: [t.sh]\n", "", 1), []string{
		"kiln.yaml:4:3: use_cases.u.tests: use case has no tests; a candidate must be testable: list scripts to run inside the booted image, e.g. tests: [tests/boot.sh]"}},
	{"test missing", strings.Replace(localBase, "[t.sh]", "[t.sh, nope.sh]", 1), []string{
		`kiln.yaml:6:19: use_cases.u.tests[1]: test script "nope.sh" not found: DIR/nope.sh does not exist`}},

	// publish
	{"publish ids", localBase + lines(
		"    publish:",
		"      accounts: ['12345', '123456789012']",
		"      organizations: ['arn:aws:organizations::123456789012:organization/o-abc']",
		"      organizational_units: ['arn:aws:organizations::123456789012:ou/o-abcd123456/ou-ab12-x']",
		"      deprecate_after: -1d",
	), []string{
		`kiln.yaml:8:18: use_cases.u.publish.accounts[0]: account "12345" is not a 12-digit AWS account id`,
		`kiln.yaml:9:23: use_cases.u.publish.organizations[0]: "arn:aws:organizations::123456789012:organization/o-abc" is not an organization ARN such as arn:aws:organizations::123456789012:organization/o-abcd123456`,
		`kiln.yaml:10:30: use_cases.u.publish.organizational_units[0]: "arn:aws:organizations::123456789012:ou/o-abcd123456/ou-ab12-x" is not an organizational unit ARN such as arn:aws:organizations::123456789012:ou/o-abcd123456/ou-ab12-cdef3456`,
		"kiln.yaml:11:24: use_cases.u.publish.deprecate_after: -1d is negative; leave it out or use 0 for no deprecation",
	}},
	{"public deprecation on aws", awsBase + "    publish: {public: true, deprecate_after: 731d}\n", []string{
		"kiln.yaml:9:46: use_cases.u.publish.deprecate_after: 731d is more than 730d (2 years), the most AWS allows for public images"}},

	// exports, disk size, schedule, version
	{"exports local", localBase + "    exports: [qcow2, iso, qcow2]\n", []string{
		`kiln.yaml:7:22: use_cases.u.exports[1]: export format "iso" is not available with the local backend; allowed: qcow2, vmdk, vhd, raw`,
		`kiln.yaml:7:27: use_cases.u.exports[2]: duplicate entry "qcow2"`,
	}},
	{"exports aws", awsBase + "    exports: [qcow2]\n", []string{
		`kiln.yaml:2:22: backend.aws.export_bucket: missing; use case "u" has exports, which the aws backend writes to an S3 bucket`,
		`kiln.yaml:9:15: use_cases.u.exports[0]: export format "qcow2" is not available with the aws backend; allowed: vmdk, vhd, raw`,
	}},
	{"disk too small", localBase + "    disk_size: 512MiB\n", []string{
		"kiln.yaml:7:16: use_cases.u.disk_size: disk size 512MiB is out of range; allowed: 1GiB to 2TiB"}},
	{"disk too large", localBase + "    disk_size: 3T\n", []string{
		"kiln.yaml:7:16: use_cases.u.disk_size: disk size 3TiB is out of range; allowed: 1GiB to 2TiB"}},
	{"schedule fields", localBase + "    schedule: '0 3 * *'\n", []string{
		`kiln.yaml:7:15: use_cases.u.schedule: invalid cron expression "0 3 * *": it has 4 fields, not 5; use five fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *" for 03:00 every day`}},
	{"schedule minute", localBase + "    schedule: '61 3 * * *'\n", []string{
		`kiln.yaml:7:15: use_cases.u.schedule: invalid cron expression "61 3 * * *": minute field "61" is not valid; use five fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *" for 03:00 every day`}},
	{"schedule list", localBase + "    schedule: '0,99 3 * * *'\n", []string{
		`kiln.yaml:7:15: use_cases.u.schedule: invalid cron expression "0,99 3 * * *": minute field "0,99" is not valid; use five fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *" for 03:00 every day`}},
	{"schedule seconds", localBase + "    schedule: '0 0 3 * * *'\n", []string{
		`kiln.yaml:7:15: use_cases.u.schedule: invalid cron expression "0 0 3 * * *": it has 6 fields, not 5; use five fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *" for 03:00 every day`}},
	{"version characters", localBase + "    version: 'v1!'\n", []string{
		`kiln.yaml:7:14: use_cases.u.version: version "v1!" has the character '!', which image names may not hold; allowed: letters, digits, spaces and ( ) [ ] . / - _ ' @`}},

	// base
	{"local base", localBase + "    base: {suite: Bookworm, packages: [vim, Foo]}\n", []string{
		`kiln.yaml:7:19: use_cases.u.base.suite: suite "Bookworm" is not a Debian suite name such as bookworm`,
		`kiln.yaml:7:45: use_cases.u.base.packages[1]: "Foo" is not a Debian package name`,
	}},
	{"aws base none", awsBaseWith("    base: {}"), []string{
		"kiln.yaml:7:11: use_cases.u.base: no base image; set exactly one of ami, name_filter (with owner) or ssm_parameter"}},
	{"aws base two", awsBaseWith("    base: {ami: ami-123, ssm_parameter: aws/x}"), []string{
		"kiln.yaml:7:11: use_cases.u.base: base sets ami and ssm_parameter; set exactly one of ami, name_filter (with owner) or ssm_parameter",
		`kiln.yaml:7:17: use_cases.u.base.ami: "ami-123" is not an AMI id such as ami-0123456789abcdef0`,
		`kiln.yaml:7:41: use_cases.u.base.ssm_parameter: "aws/x" must start with "/", e.g. /aws/service/debian/release/bookworm/latest/amd64`,
	}},
	{"aws name filter without owner", awsBaseWith("    base: {name_filter: debian-*}"), []string{
		"kiln.yaml:7:5: use_cases.u.base.owner: missing; name_filter needs the owner of the images: an account id, amazon, aws-marketplace or self"}},
	{"aws owner without name filter", awsBaseWith("    base: {ami: ami-12345678, owner: amazon}"), []string{
		"kiln.yaml:7:38: use_cases.u.base.owner: owner is used only with name_filter"}},
	{"aws owner", awsBaseWith("    base: {name_filter: x, owner: bob}"), []string{
		`kiln.yaml:7:35: use_cases.u.base.owner: owner "bob" is not a 12-digit account id, amazon, aws-marketplace or self`}},

	// backend.local
	{"local backend fields", localBase + "backend: {local: {account_id: '123', accel: hvf, mirror: 'ftp://x', boot_timeout: 0s}}\n", []string{
		`kiln.yaml:7:31: backend.local.account_id: account id "123" is not 12 digits`,
		`kiln.yaml:7:45: backend.local.accel: unknown accelerator "hvf"; allowed: auto, kvm, tcg`,
		`kiln.yaml:7:58: backend.local.mirror: mirror "ftp://x" is not an http, https or file URL such as http://deb.debian.org/debian`,
		"kiln.yaml:7:83: backend.local.boot_timeout: 0s is not a positive duration; use e.g. 10m",
	}},
	{"local backend regions", localBase + lines(
		"backend:",
		"  local:",
		"    region_paths: {r1: /srv/a, r9: /srv/b, r2: /srv/a/}",
		"    block_public_access: [r1, r9]",
	), []string{
		`kiln.yaml:9:32: backend.local.region_paths.r9: region "r9" is not among regions [r1 r2]`,
		"kiln.yaml:9:48: backend.local.region_paths.r2: regions r1 and r2 share the directory /srv/a; each region needs its own",
		`kiln.yaml:10:31: backend.local.block_public_access[1]: region "r9" is not among regions [r1 r2]`,
	}},
	{"local store in system directories", localBase + "backend: {local: {root: /usr, region_paths: {r1: /etc/kiln, r2: /home}}}\n", []string{
		"kiln.yaml:7:25: backend.local.root: /usr is a system directory; give kiln's images a directory of their own",
		"kiln.yaml:7:50: backend.local.region_paths.r1: /etc/kiln lies inside the system directory /etc; give kiln's images a directory of their own",
		"kiln.yaml:7:65: backend.local.region_paths.r2: /home is a system directory; give kiln's images a directory of their own",
	}},
	{"local region path empty", localBase + "backend: {local: {region_paths: {r1: ''}}}\n", []string{
		`kiln.yaml:7:38: backend.local.region_paths.r1: missing; give the directory that holds region "r1"`}},

	// backend.aws
	{"aws allowed accounts missing", awsWith("backend: {type: aws}"), []string{
		"kiln.yaml:2:1: backend.aws.allowed_accounts: missing; list the 12-digit ids of the accounts kiln may act in, e.g. [123456789012]"}},
	{"aws backend fields", awsWith(strings.TrimSuffix(lines(
		"backend:",
		"  type: aws",
		"  aws:",
		"    allowed_accounts: ['123456789012', '42']",
		"    copy_concurrency: 0",
		"    kms_keys: {us-east-1: k, ap-south-1: ''}",
		"    ssm_parameters: kiln/{channel}",
		"    instance_type: t3",
		"    subnet_id: subnet-xyz",
		"    export_bucket: A_bucket",
		"    build_timeout: 0s",
		"    copy_timeout: -1m",
	), "\n")), []string{
		`kiln.yaml:5:40: backend.aws.allowed_accounts[1]: account "42" is not a 12-digit AWS account id`,
		"kiln.yaml:6:23: backend.aws.copy_concurrency: 0 is out of range; allowed: 1 to 100",
		`kiln.yaml:7:30: backend.aws.kms_keys.ap-south-1: region "ap-south-1" is not among regions [us-east-1 eu-west-1]`,
		`kiln.yaml:7:42: backend.aws.kms_keys.ap-south-1: missing; give the KMS key id or ARN for region "ap-south-1"`,
		`kiln.yaml:8:21: backend.aws.ssm_parameters: "kiln/{channel}" must start with "/", e.g. /kiln/{channel}/{use_case}`,
		`kiln.yaml:9:20: backend.aws.instance_type: "t3" is not an EC2 instance type such as t3.micro`,
		`kiln.yaml:10:16: backend.aws.subnet_id: "subnet-xyz" is not a subnet id such as subnet-0123456789abcdef0`,
		`kiln.yaml:11:20: backend.aws.export_bucket: "A_bucket" is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and dashes)`,
		"kiln.yaml:12:20: backend.aws.build_timeout: 0s is not a positive duration; use e.g. 60m",
		"kiln.yaml:13:19: backend.aws.copy_timeout: -1m is not a positive duration; use e.g. 60m",
	}},
	{"aws copy concurrency high", awsWith(`backend: {type: aws, aws: {allowed_accounts: ["123456789012"], copy_concurrency: 101}}`), []string{
		"kiln.yaml:2:82: backend.aws.copy_concurrency: 101 is out of range; allowed: 1 to 100"}},
	{"ssm placeholder", awsWith(`backend: {type: aws, aws: {allowed_accounts: ['123456789012'], ssm_parameters: '/kiln/{version}'}}`), []string{
		`kiln.yaml:2:80: backend.aws.ssm_parameters: unknown placeholder "{version}" in "/kiln/{version}"; allowed: {arch}, {channel}, {use_case}`}},
	{"ssm lacks channel", awsWith(`backend: {type: aws, aws: {allowed_accounts: ['123456789012'], ssm_parameters: '/kiln/{use_case}'}}`), []string{
		`kiln.yaml:2:80: backend.aws.ssm_parameters: "/kiln/{use_case}" lacks {channel}; with several channels, they would write the same parameter`}},
	{"ssm lacks arch", strings.Replace(awsWith(`backend: {type: aws, aws: {allowed_accounts: ['123456789012'], ssm_parameters: '/kiln/{channel}/{use_case}'}}`), "[x86_64]", "[x86_64, arm64]", 1), []string{
		`kiln.yaml:2:80: backend.aws.ssm_parameters: "/kiln/{channel}/{use_case}" lacks {arch}; use case "u" has several architectures, which would write the same parameter`}},
	{"ssm characters", awsWith(`backend: {type: aws, aws: {allowed_accounts: ['123456789012'], ssm_parameters: '/kiln/{channel} x/{use_case}'}}`), []string{
		`kiln.yaml:2:80: backend.aws.ssm_parameters: "/kiln/{channel} x/{use_case}" has characters parameter names may not hold; allowed: letters, digits and _ . - /`}},
}

func TestValidation(t *testing.T) {
	dir := newProject(t)
	for _, tc := range validationCases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrors(t, tc.doc, dir, tc.want)
		})
	}
}
