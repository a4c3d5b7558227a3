package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// deploymentsDoc is a project with the deployments of a small team: dev,
// staging and prod extending one another, a shared deployment others read
// outputs from, and a sandbox template.
var deploymentsDoc = localBase + lines(
	"cost_tag: {key: team, value: demo}",
	"deployments:",
	"  dev:",
	"    image: {use_case: u, channel: latest}",
	"    units:",
	"      web:",
	"        vm: {memory: 512MiB, ports: {http: 8080}}",
	"      proxy:",
	"        after: [web]",
	"        process:",
	"          command: [s.sh, '{port.front}', '{web.url.http}', '{inputs.token}', '{{literal}}']",
	"          env: {GREETING: '{inputs.greeting}'}",
	"          ports: [front]",
	"    inputs:",
	"      greeting: {value: hello}",
	"      token: {secret: {env: DEV_TOKEN}}",
	"      db: {from: shared.db.url}",
	"    depends_on: [shared]",
	"    hooks:",
	"      post_deploy: [{command: [s.sh, smoke]}]",
	"    checks:",
	"      - name: health",
	"        http: {url: '{web.url.http}/health', body: '^ok'}",
	"        count: 3",
	"        interval: 1s",
	"        failure_limit: 1",
	"      - name: version",
	"        http: {url: '{web.url.http}/version', json_field: version, equals: '{version}'}",
	"  staging:",
	"    extends: dev",
	"    region: r2",
	"    cost_tag: stage",
	"    units:",
	"      web:",
	"        vm: {cpus: 2}",
	"    inputs:",
	"      greeting: {value: hi}",
	"      token: {secret: {file: token.txt}}",
	"    promote: {from: dev, soak: 0}",
	"  prod:",
	"    extends: staging",
	"    units:",
	"      proxy:",
	"        process: {command: [s.sh]}",
	"    promote:",
	"      from: staging",
	"      soak: 1h",
	"      approval: true",
	"      windows: [{days: [mon, tue], start: '09:00', end: '17:00', timezone: Europe/Berlin}]",
	"  shared:",
	"    image: {use_case: u, id: img-0123456789abcdef0}",
	"    units: {db: {process: {command: [s.sh]}}}",
	"  sandbox:",
	"    template: true",
	"    image: {use_case: u, channel: latest}",
	"    units: {web: {vm: {}}}",
)

func TestDeploymentsParse(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(deploymentsDoc), dir)
	if err != nil {
		t.Fatalf("%v", err)
	}
	dev, staging, prod := c.Deployments["dev"], c.Deployments["staging"], c.Deployments["prod"]
	sandbox := c.Deployments["sandbox"]
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"names", c.DeploymentNames(), []string{"dev", "prod", "sandbox", "shared", "staging"}},
		{"dev region (default: build region)", dev.Region, "r1"},
		{"dev account", dev.Account, "000000000000"},
		{"dev cost tag (default: name)", dev.CostTagValue(), "dev"},
		{"dev arch (the only one)", dev.Image.Arch, "x86_64"},
		{"dev unit order", dev.UnitOrder(), []string{"web", "proxy"}},
		{"dev vm memory", dev.Units["web"].VM.Memory, Size(512 << 20)},
		{"dev vm cpus (default)", dev.Units["web"].VM.CPUs, 1},
		{"dev vm restart", dev.Units["web"].VM.Restart, "on-failure"},
		{"dev process stop", dev.Units["proxy"].Process.StopTimeout, Duration(10 * time.Second)},
		{"dev check count", dev.Checks[0].Count, 3},
		{"dev check status default", dev.Checks[0].HTTP.Status, 200},
		{"dev check error limit default", *dev.Checks[1].ConsecutiveErrorLimit, 4},
		{"dev check interval default", dev.Checks[1].Interval, Duration(5 * time.Second)},
		{"dev hook name", dev.Hooks.PostDeploy[0].Name, "s.sh"},
		// staging: its own region, cost tag, cpus and inputs; the rest
		// from dev.
		{"staging region", staging.Region, "r2"},
		{"staging cost tag", staging.CostTagValue(), "stage"},
		{"staging vm cpus", staging.Units["web"].VM.CPUs, 2},
		{"staging vm memory (dev's)", staging.Units["web"].VM.Memory, Size(512 << 20)},
		{"staging vm ports (dev's)", staging.Units["web"].VM.Ports, map[string]int{"http": 8080}},
		{"staging proxy (dev's)", staging.Units["proxy"].Process.Ports, []string{"front"}},
		{"staging greeting", staging.Inputs["greeting"].Value, str("hi")},
		{"staging token: file replaces env", *staging.Inputs["token"].Secret, SecretRef{File: "token.txt"}},
		{"staging db (dev's)", staging.Inputs["db"].From, "shared.db.url"},
		{"staging checks (dev's)", len(staging.Checks), 2},
		{"staging soak", staging.Promote.Soak, Duration(0)},
		// prod: staging's, with proxy redefined.
		{"prod region (staging's)", prod.Region, "r2"},
		{"prod proxy command", prod.Units["proxy"].Process.Command, []string{"s.sh"}},
		{"prod proxy ports (staging's: settings merge)", prod.Units["proxy"].Process.Ports, []string{"front"}},
		{"prod proxy after (dev's)", prod.Units["proxy"].After, []string{"web"}},
		{"prod window zone", prod.Promote.Windows[0].Timezone, "Europe/Berlin"},
		{"prod approval", prod.Promote.Approval, true},
		{"sandbox expiry default", sandbox.ExpireAfter, Duration(7 * 24 * time.Hour)},
		{"sandbox vm memory default", sandbox.Units["web"].VM.Memory, Size(1 << 30)},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.field, tc.got, tc.want)
		}
	}
	// Deployments that extend one another share nothing: changing one
	// leaves the others as they are.
	staging.Units["web"].VM.Ports["http"] = 1
	staging.Checks[0].Count = 99
	if dev.Units["web"].VM.Ports["http"] != 8080 || dev.Checks[0].Count != 3 {
		t.Error("staging shares maps or lists with dev")
	}
	alice := sandbox.Instantiate("alice")
	if alice.Name != "alice" || alice.Template || alice.CostTagValue() != "alice" || alice.Extends != "sandbox" {
		t.Errorf("instantiated %+v", alice)
	}
	alice.Units["web"].VM.CPUs = 7
	if sandbox.Units["web"].VM.CPUs != 1 {
		t.Error("a personal deployment shares its template's units")
	}
}

// depBase is localBase with one valid deployment, dev, at lines 8 to 10;
// cases append its further settings from line 11.
var depBase = localBase + lines(
	"deployments:",
	"  dev:",
	"    image: {use_case: u, channel: latest}",
	"    units: {web: {vm: {ports: {http: 80}}}}",
)

// deploymentCases cover the deployment validation rules. They also seed
// FuzzParse.
var deploymentCases = []errorCase{
	{"name too short", strings.Replace(depBase, "  dev:", "  d:", 1), []string{
		`kiln.yaml:8:3: deployments.d: invalid deployment name "d"; use 2 to 16 lowercase letters, digits and dashes, starting with a letter and not ending in a dash`}},
	{"name too long", strings.Replace(depBase, "  dev:", "  abcdefghijklmnopq:", 1), []string{
		`kiln.yaml:8:3: deployments.abcdefghijklmnopq: invalid deployment name "abcdefghijklmnopq"; use 2 to 16 lowercase letters, digits and dashes, starting with a letter and not ending in a dash`}},
	{"leading digit", strings.Replace(depBase, "  dev:", "  1dev:", 1), []string{
		`kiln.yaml:8:3: deployments.1dev: invalid deployment name "1dev"; use 2 to 16 lowercase letters, digits and dashes, starting with a letter and not ending in a dash`}},
	{"uppercase", strings.Replace(depBase, "  dev:", "  Dev:", 1), []string{
		`kiln.yaml:8:3: deployments.Dev: invalid deployment name "Dev"; use 2 to 16 lowercase letters, digits and dashes, starting with a letter and not ending in a dash`}},
	{"reserved word", strings.Replace(depBase, "  dev:", "  status:", 1), []string{
		`kiln.yaml:8:3: deployments.status: "status" is reserved (a command word); choose another deployment name`}},
	{"channel name", strings.Replace(depBase, "  dev:", "  nightly:", 1) + "channels: {latest: {}, nightly: {}}\n", []string{
		`kiln.yaml:8:3: deployments.nightly: "nightly" is a channel's name; deployments and channels need different names (promote takes either)`}},
	{"default channel name", strings.Replace(depBase, "  dev:", "  stable:", 1), []string{
		`kiln.yaml:8:3: deployments.stable: "stable" is reserved (a command word); choose another deployment name`}},
	{"unknown field", depBase + "    colour: red\n", []string{
		`kiln.yaml:11:5: deployments.dev.colour: unknown field; allowed: account, checks, cost_tag, depends_on, description, expire_after, extends, hooks, image, inputs, promote, protect, region, template, units`}},
	{"unknown region", depBase + "    region: r9\n", []string{
		`kiln.yaml:11:13: deployments.dev.region: region "r9" is not among regions [r1 r2]`}},
	{"wrong account", depBase + "    account: '111122223333'\n", []string{
		`kiln.yaml:11:14: deployments.dev.account: account "111122223333" is not the local backend's account "000000000000" (backend.local.account_id)`}},
	{"unknown use case", strings.Replace(depBase, "use_case: u,", "use_case: x,", 1), []string{
		`kiln.yaml:9:23: deployments.dev.image.use_case: use case "x" is not defined; defined: u`}},
	{"unknown channel", strings.Replace(depBase, "channel: latest", "channel: nightly", 1), []string{
		`kiln.yaml:9:35: deployments.dev.image.channel: channel "nightly" is not defined; defined: latest, stable`}},
	{"channel and id", strings.Replace(depBase, "channel: latest", "channel: latest, id: img-0123456789abcdef0", 1), []string{
		`kiln.yaml:9:47: deployments.dev.image.id: set channel or id, not both`}},
	{"bad id", strings.Replace(depBase, "channel: latest", "id: ami-12345678", 1), []string{
		`kiln.yaml:9:30: deployments.dev.image.id: "ami-12345678" is not a local image id such as img-0123456789abcdef0`}},
	{"no units", strings.Replace(depBase, "    units: {web: {vm: {ports: {http: 80}}}}\n", "", 1), []string{
		`kiln.yaml:8:3: deployments.dev.units: no units; a deployment runs at least one (vm or process locally, stack or instance on aws)`}},
	{"two kinds", strings.Replace(depBase, "{web: {vm: {ports: {http: 80}}}}", "{web: {vm: {}, process: {command: [s.sh]}}}", 1), []string{
		`kiln.yaml:10:18: deployments.dev.units.web: set exactly one of vm, process (local backend), stack, instance (aws backend); found 2`}},
	{"aws kind on local", strings.Replace(depBase, "{web: {vm: {ports: {http: 80}}}}", "{web: {stack: {template: t.sh}}}", 1), []string{
		`kiln.yaml:10:26: deployments.dev.units.web.stack: stack units run on the aws backend; this project's backend is local`}},
	{"guest port range", strings.Replace(depBase, "http: 80", "http: 70000", 1), []string{
		`kiln.yaml:10:38: deployments.dev.units.web.vm.ports.http: guest port 70000 is out of range 1-65535`}},
	{"host port without port", strings.Replace(depBase, "{ports: {http: 80}}", "{ports: {http: 80}, host_ports: {ssh: 2222}}", 1), []string{
		`kiln.yaml:10:56: deployments.dev.units.web.vm.host_ports.ssh: no port "ssh" in ports; host_ports fixes the host side of a port listed there`}},
	{"memory", strings.Replace(depBase, "{ports: {http: 80}}", "{memory: 16MiB}", 1), []string{
		`kiln.yaml:10:32: deployments.dev.units.web.vm.memory: 16MiB is out of range; use 256MiB to 64GiB`}},
	{"restart", strings.Replace(depBase, "{ports: {http: 80}}", "{restart: always}", 1), []string{
		`kiln.yaml:10:33: deployments.dev.units.web.vm.restart: unknown restart policy "always"; allowed: on-failure, never`}},
	{"unknown placeholder", strings.Replace(depBase, "{web: {vm: {ports: {http: 80}}}}", "{p: {process: {command: [s.sh, '{nope}']}}}", 1), []string{
		`kiln.yaml:10:43: deployments.dev.units.p.process.command[1]: unknown placeholder {nope}; allowed: {project}, {deployment}, {region}, {version}, {image_id}, {image_name}, {inputs.NAME}, {port.NAME} and {UNIT.OUTPUT} with UNIT one of the deployment's units (p)`}},
	{"unknown input placeholder", strings.Replace(depBase, "{web: {vm: {ports: {http: 80}}}}", "{p: {process: {command: [s.sh], env: {A: '{inputs.x}'}}}}", 1), []string{
		`kiln.yaml:10:53: deployments.dev.units.p.process.env.A: {inputs.x}: the deployment has no input "x" (inputs: )`}},
	{"unclosed brace", strings.Replace(depBase, "{web: {vm: {ports: {http: 80}}}}", "{p: {process: {command: ['{version']}}}", 1), []string{
		`kiln.yaml:10:37: deployments.dev.units.p.process.command[0]: an unclosed "{" at byte 0; write "{{" for a literal brace`}},
	{"output without after", strings.Replace(depBase, "{web: {vm: {ports: {http: 80}}}}", "{web: {vm: {}}, p: {process: {command: [s.sh, '{web.url.http}']}}}", 1), []string{
		`kiln.yaml:10:58: deployments.dev.units.p.process.command[1]: {web.url.http}: unit p uses unit web's outputs; list web in its after`}},
	{"unit cycle", strings.Replace(depBase, "{web: {vm: {ports: {http: 80}}}}", "{a: {after: [b], vm: {}}, b: {after: [a], vm: {}}}", 1), []string{
		`kiln.yaml:10:24: deployments.dev.units.a.after: units wait for each other in a circle: a -> b -> a`}},
	{"input two sources", depBase + "    inputs: {x: {value: a, from: b.c}}\n", []string{
		`kiln.yaml:11:17: deployments.dev.inputs.x: set exactly one of value (a literal), from (DEPLOYMENT.OUTPUT) and secret (env, file, ssm or secrets_manager); found 2`}},
	{"from without depends_on", depBase + "    inputs: {x: {from: other.db.url}}\n", []string{
		`kiln.yaml:11:24: deployments.dev.inputs.x.from: deployment "other" is not in depends_on []; list it there so it is deployed first`}},
	{"ssm without region on local", depBase + "    inputs: {x: {secret: {ssm: /a/b}}}\n", []string{
		`kiln.yaml:11:18: deployments.dev.inputs.x.secret.region: missing; on the local backend name the AWS region to read the secret from`}},
	{"secret two sources", depBase + "    inputs: {x: {secret: {env: A, file: f}}}\n", []string{
		`kiln.yaml:11:26: deployments.dev.inputs.x.secret: set exactly one of env, file, ssm and secrets_manager; found 2`}},
	{"depends on itself", depBase + "    depends_on: [dev]\n", []string{
		`kiln.yaml:11:18: deployments.dev.depends_on[0]: a deployment cannot depend on itself`}},
	{"extends unknown", depBase + "    extends: nope\n", []string{
		`kiln.yaml:11:14: deployments.dev.extends: deployment "nope" is not defined; defined: dev`}},
	{"extends cycle", depBase + "    extends: qa\n  qa: {extends: dev}\n", []string{
		`kiln.yaml:11:14: deployments.dev.extends: extends goes round in a circle: dev -> qa -> dev`,
		`kiln.yaml:12:17: deployments.qa.extends: extends goes round in a circle: qa -> dev -> qa`}},
	{"check without kind", depBase + "    checks: [{name: x}]\n", []string{
		`kiln.yaml:11:14: deployments.dev.checks[0]: set http (a request and what its answer must be) or command (a program that exits 0)`}},
	{"check failure limit", depBase + "    checks: [{command: [s.sh], count: 2, failure_limit: 2}]\n", []string{
		`kiln.yaml:11:57: deployments.dev.checks[0].failure_limit: 2 tolerates every one of the 2 measurements failing; use less than count`}},
	{"check count zero", depBase + "    checks: [{command: [s.sh], count: 0}]\n", []string{
		`kiln.yaml:11:39: deployments.dev.checks[0].count: 0 measurements; use 1 or more`}},
	{"json field without equals", depBase + "    checks: [{http: {url: 'http://x/', json_field: version}}]\n", []string{
		`kiln.yaml:11:15: deployments.dev.checks[0].http.equals: missing; json_field needs the value it must equal, e.g. "{version}"`}},
	{"bad body regexp", depBase + "    checks: [{http: {url: 'http://x/', body: '('}}]\n", []string{
		"kiln.yaml:11:46: deployments.dev.checks[0].http.body: not a regular expression: error parsing regexp: missing closing ): `(`"}},
	{"not a URL", depBase + "    checks: [{http: {url: 'ftp://x/'}}]\n", []string{
		`kiln.yaml:11:27: deployments.dev.checks[0].http.url: "ftp://x/" is not an http or https URL`}},
	{"status", depBase + "    checks: [{http: {url: 'http://x/', status: 99}}]\n", []string{
		`kiln.yaml:11:48: deployments.dev.checks[0].http.status: 99 is not an HTTP status code (100-599)`}},
	{"promote from itself", depBase + "    promote: {from: dev}\n", []string{
		`kiln.yaml:11:21: deployments.dev.promote.from: a deployment cannot be promoted from itself`}},
	{"window", depBase + "    promote: {windows: [{days: [monday], start: '9:00', end: '08:00', timezone: Mars/Base}]}\n", []string{
		`kiln.yaml:11:33: deployments.dev.promote.windows[0].days[0]: unknown day "monday"; allowed: sun, mon, tue, wed, thu, fri, sat`,
		`kiln.yaml:11:49: deployments.dev.promote.windows[0].start: "9:00" is not a time of day HH:MM (00:00 to 24:00)`,
		`kiln.yaml:11:81: deployments.dev.promote.windows[0].timezone: unknown time zone "Mars/Base"; use an IANA name such as UTC or Europe/Berlin`}},
	{"window end before start", depBase + "    promote: {windows: [{start: '18:00', end: '08:00'}]}\n", []string{
		`kiln.yaml:11:47: deployments.dev.promote.windows[0].end: 08:00 is not after start 18:00; a window ending after midnight is two windows`}},
	{"expiry on a deployment", depBase + "    expire_after: 3d\n", []string{
		`kiln.yaml:11:19: deployments.dev.expire_after: only a template (template: true) has an expiry; its personal deployments get it`}},
	{"template host port", depBase + "    template: true\n" + "  qa:\n    extends: dev\n    template: false\n", nil},
	{"shared host port", strings.Replace(depBase, "{ports: {http: 80}}", "{ports: {http: 80}, host_ports: {http: 18080}}", 1) + "  qa: {extends: dev}\n", []string{
		`kiln.yaml:10:62: deployments.dev.units.web.vm.host_ports.http: dev.web.vm.host_ports.http and qa.web.vm.host_ports.http both use host port 18080; each needs its own (leave host_ports out to get a free port)`}},
	// A mistake in dev is reported once, at dev, not again for staging.
	{"inherited error reported once", strings.Replace(depBase, "{ports: {http: 80}}", "{cpus: 0}", 1) + "  qa: {extends: dev}\n", []string{
		`kiln.yaml:10:30: deployments.dev.units.web.vm.cpus: 0 is out of range; use 1 to 64`}},
	{"depends cycle", depBase + "    depends_on: [qa]\n  qa: {extends: dev, depends_on: [dev]}\n", []string{
		`kiln.yaml:12:34: deployments.qa.depends_on: deployments depend on each other in a circle: dev -> qa -> dev`}},
}

func TestDeploymentErrors(t *testing.T) {
	dir := newProject(t)
	for _, tc := range deploymentCases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrors(t, tc.doc, dir, tc.want)
		})
	}
}

func TestPlaceholders(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"{web.url.http}/health", "<web.url.http>/health", ""},
		{"{{\"a\": {version}}}", "{\"a\": <version>}", ""},
		{"no placeholders", "no placeholders", ""},
		{"{", "", `an unclosed "{" at byte 0`},
		{"a}b", "", `a lone "}" at byte 1`},
		{"{Bad}", "", `"{Bad}" is not a placeholder`},
		{"{}", "", `"{}" is not a placeholder`},
	} {
		got, err := ExpandPlaceholders(tc.in, func(n string) (string, error) { return "<" + n + ">", nil })
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
