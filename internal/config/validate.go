package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// checker validates a decoded Config, reporting each problem at the
// position the decoder recorded for the field.
type checker struct {
	c     *Config
	d     *decoder
	stats map[string]statResult // resolved path → what os.Stat said
}

type statResult struct {
	info os.FileInfo
	err  error
}

func newChecker(c *Config, d *decoder) *checker {
	return &checker{c: c, d: d, stats: map[string]statResult{}}
}

func (k *checker) check() {
	k.checkProject()
	backendOK := k.checkBackendType()
	if backendOK {
		k.checkRegions()
	}
	k.checkCostTag()
	k.checkNaming()
	k.checkChannels()
	k.checkVariables()
	k.checkFormats()
	k.checkForge()
	k.checkCI()
	if k.c.Cleanup.ConfirmAbove < 0 {
		k.errorf("cleanup.confirm_above", "%d is negative; use 0 to confirm every cleanup", k.c.Cleanup.ConfirmAbove)
	}
	k.checkDestroy()
	if len(k.c.UseCases) == 0 {
		k.errorf("use_cases", "no use cases; define at least one (`kiln init` writes an example)")
	}
	for _, name := range k.c.UseCaseNames() {
		k.checkUseCase(k.c.UseCases[name], backendOK)
	}
	if backendOK {
		k.checkDeployments()
	}
	k.checkServe()
	k.checkDistribution()
	switch k.c.Backend.Type {
	case "local":
		k.checkLocal()
	case "aws":
		k.checkAWS()
		k.checkAWSBuild()
	}
}

// errorf reports a problem with the value at path. When the document does
// not set path, the problem is placed at the nearest field that it does set.
func (k *checker) errorf(path, format string, args ...any) {
	k.report(path, false, format, args...)
}

// keyErrorf reports a problem with the key of path, such as a bad name.
func (k *checker) keyErrorf(path, format string, args ...any) {
	k.report(path, true, format, args...)
}

func (k *checker) report(path string, atKey bool, format string, args ...any) {
	// A value that failed to decode was reported already; what validation
	// would say about its zero value would only be noise.
	for p, ok := path, true; ok; p, ok = parentPath(p) {
		if k.d.failed[p] {
			return
		}
	}
	line, col := k.position(path, atKey)
	k.d.errs = append(k.d.errs, &Error{File: k.d.file, Line: line, Col: col, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (k *checker) position(path string, atKey bool) (line, col int) {
	if n := k.d.keys[path]; atKey && n != nil {
		return n.Line, n.Column
	}
	if n := k.d.values[path]; n != nil {
		return n.Line, n.Column
	}
	for p, ok := parentPath(path); ok; p, ok = parentPath(p) {
		if n := k.d.keys[p]; n != nil {
			return n.Line, n.Column
		}
		if n := k.d.values[p]; n != nil {
			return n.Line, n.Column
		}
	}
	return 0, 0
}

var projectRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (k *checker) checkProject() {
	switch p := k.c.Project; {
	case p == "":
		k.errorf("project", "missing; name the project with lowercase letters, digits and dashes, e.g. project: demo")
	case !projectRE.MatchString(p):
		k.errorf("project", "invalid project name %q; use up to 63 lowercase letters, digits and dashes, starting with a letter or digit", p)
	}
}

func (k *checker) checkBackendType() bool {
	if t := k.c.Backend.Type; t != "local" && t != "aws" {
		k.errorf("backend.type", "unknown backend %q; allowed: local, aws", t)
		return false
	}
	return true
}

// checkRegions checks the region list and the build region for the backend.
func (k *checker) checkRegions() {
	c := k.c
	if len(c.Regions) == 0 {
		example := "local-a"
		if c.Backend.Type == "aws" {
			example = "us-east-1"
		}
		k.errorf("regions", "no regions; list at least one, e.g. regions: [%s]", example)
		return
	}
	seen := map[string]bool{}
	for i, r := range c.Regions {
		path := fmt.Sprintf("regions[%d]", i)
		switch {
		case seen[r]:
			k.errorf(path, "duplicate region %q", r)
		case c.Backend.Type == "aws" && !ValidAWSRegion(r):
			k.errorf(path, "unknown AWS region %q", r)
		case c.Backend.Type == "local" && !ValidLocalRegion(r):
			k.errorf(path, "invalid region name %q; use a lowercase letter, then up to 62 lowercase letters, digits or dashes", r)
		}
		seen[r] = true
	}
	if !seen[c.BuildRegion] {
		k.errorf("build_region", "build region %q is not among regions %s", c.BuildRegion, k.regionList())
	}
}

func (k *checker) regionList() string { return "[" + strings.Join(k.c.Regions, " ") + "]" }

// checkRegionRef checks that a field naming a region names a configured one.
func (k *checker) checkRegionRef(path, region string, atKey bool) {
	if !slices.Contains(k.c.Regions, region) {
		k.report(path, atKey, "region %q is not among regions %s", region, k.regionList())
	}
}

// tagChars are the characters AWS allows in tag keys and values.
var tagChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

func (k *checker) checkCostTag() {
	t := k.c.CostTag
	switch {
	case t.Key != "" && t.Value == "":
		k.errorf("cost_tag.value", "missing; cost_tag.key %q needs a value (set both or neither)", t.Key)
	case t.Key == "" && t.Value != "":
		k.errorf("cost_tag.key", "missing; cost_tag.value %q needs a key (set both or neither)", t.Value)
	}
	if n := utf8.RuneCountInString(t.Key); n > 128 {
		k.errorf("cost_tag.key", "key is %d characters long; the limit is 128", n)
	}
	for _, reserved := range []string{"aws:", "kiln:"} {
		if len(t.Key) >= len(reserved) && strings.EqualFold(t.Key[:len(reserved)], reserved) {
			k.errorf("cost_tag.key", "key %q starts with %q, which is reserved; choose another prefix", t.Key, reserved)
		}
	}
	if n := utf8.RuneCountInString(t.Value); n > 256 {
		k.errorf("cost_tag.value", "value is %d characters long; the limit is 256", n)
	}
	for _, f := range []struct{ path, s string }{{"cost_tag.key", t.Key}, {"cost_tag.value", t.Value}} {
		if !tagChars.MatchString(f.s) {
			k.errorf(f.path, "%q has characters tags may not hold; allowed: letters, digits, spaces and _ . : / = + - @", f.s)
		}
	}
}

// checkNaming checks the image naming rules: known placeholders, characters
// allowed in image names, lengths, and names that stay unique.
func (k *checker) checkNaming() {
	n := k.c.Naming
	if t, ok := k.imageNameRule("naming.candidate", n.Candidate); ok && !t.uses["asset_id"] {
		k.errorf("naming.candidate", "%q lacks {asset_id}; candidate names need it so reruns and cleanup find a run's images by name", n.Candidate)
	}
	t, ok := k.imageNameRule("naming.release", n.Release)
	if !ok || t.uses["asset_id"] {
		return
	}
	if !t.uses["version"] {
		k.errorf("naming.release", "%q has neither {asset_id} nor {version}; release names must differ from one release to the next", n.Release)
		return
	}
	if !t.uses["use_case"] && len(k.c.UseCases) > 1 {
		k.errorf("naming.release", "%q lacks {use_case}; with several use cases, their releases would get the same names", n.Release)
	}
	for _, name := range k.c.UseCaseNames() {
		if len(k.c.UseCases[name].Architectures) > 1 && !t.uses["arch"] {
			k.errorf("naming.release", "%q lacks {arch}; use case %q has several architectures, whose releases would get the same names", n.Release, name)
			break
		}
	}
}

// imageNameRule checks a naming rule's placeholders, literal characters and
// the length of the names it makes for each use case.
func (k *checker) imageNameRule(path, rule string) (template, bool) {
	rule, ok := k.checkNameVars(path, rule)
	if !ok {
		return template{}, false
	}
	t, err := parseTemplate(rule, namePlaceholders)
	if err != nil {
		k.errorf(path, "%v", err)
		return t, false
	}
	if r, bad := badImageNameChar(t.literal); bad {
		k.errorf(path, "%q has the character %q, which image names may not hold; allowed: %s", rule, r, imageNameChars)
		return t, false
	}
	for _, name := range k.c.UseCaseNames() {
		u := k.c.UseCases[name]
		for _, arch := range u.Architectures {
			example := ExpandName(rule, sampleVars(u, arch))
			n := utf8.RuneCountInString(example)
			if n > maxImageName {
				k.errorf(path, "names would be %d characters long for use case %q (%s), more than the limit of %d", n, name, arch, maxImageName)
				return t, false
			}
			// An unset version is not known yet; only a set one gives the
			// real length.
			if n < minImageName && (!t.uses["version"] || u.Version != "") {
				k.errorf(path, "names would be only %d characters long for use case %q (%q); the minimum is %d", n, name, example, minImageName)
				return t, false
			}
		}
	}
	return t, true
}

var channelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func (k *checker) checkChannels() {
	manifests := map[string]string{} // clean manifest path → channel
	for _, name := range k.c.ChannelNames() {
		ch := k.c.Channels[name]
		path := joinPath("channels", name)
		if !channelRE.MatchString(name) {
			k.keyErrorf(path, "invalid channel name %q; use a lowercase letter, then up to 31 lowercase letters, digits or dashes", name)
		}
		mpath := path + ".manifest"
		switch m := ch.Manifest; {
		case filepath.IsAbs(m):
			k.errorf(mpath, "manifest path %q must be relative to the config's directory", m)
		case !filepath.IsLocal(m):
			k.errorf(mpath, "manifest path %q leads outside the config's directory", m)
		case func() bool { _, err := ResolveInside(k.c.Dir, m); return errors.Is(err, ErrOutside) }():
			k.errorf(mpath, "manifest path %q leads outside the project directory %s through a symbolic link; kiln does not write outside the project", m, k.c.Dir)
		case !strings.HasSuffix(m, ".json"):
			k.errorf(mpath, "manifest path %q must end in .json", m)
		default:
			clean := filepath.Clean(m)
			if other, dup := manifests[clean]; dup {
				k.errorf(mpath, "channels %s and %s both use manifest %q; each channel needs its own", other, name, m)
			}
			manifests[clean] = name
		}
		if ch.MinInterval < 0 {
			k.errorf(path+".min_interval", "%s is negative", ch.MinInterval)
		}
	}
}

// stat returns os.Stat of a path, asking the file system once per path.
func (k *checker) stat(p string) (os.FileInfo, error) {
	r, ok := k.stats[p]
	if !ok {
		r.info, r.err = os.Stat(p)
		k.stats[p] = r
	}
	return r.info, r.err
}

// checkFile checks that a recipe file exists inside the project directory,
// after following symbolic links; what names it in messages ("script",
// "playbook"). A directory is accepted only when dirOK.
func (k *checker) checkFile(path, p, what string, dirOK bool) {
	if p == "" {
		k.errorf(path, "missing; give the %s's path relative to the config's directory", what)
		return
	}
	abs := k.c.Resolve(p)
	if _, err := ResolveInside(k.c.Dir, p); errors.Is(err, ErrOutside) {
		k.errorf(path, "%s %q leads outside the project directory %s; recipe files must be inside it (copy the file in)", what, p, k.c.Dir)
		return
	}
	info, err := k.stat(abs)
	switch {
	case os.IsNotExist(err):
		k.errorf(path, "%s %q not found: %s does not exist", what, p, abs)
	case err != nil:
		k.errorf(path, "%s %q: cannot read %s: %v", what, p, abs, cause(err))
	case info.IsDir() && !dirOK:
		k.errorf(path, "%s %q is a directory (%s); expected a file", what, p, abs)
	case !info.IsDir() && !info.Mode().IsRegular():
		k.errorf(path, "%s %q (%s) is not a regular file", what, p, abs)
	}
}

// checkList reports duplicates in a list of strings and, through bad,
// entries that are not allowed: bad returns the message, or "" for a good
// entry.
func (k *checker) checkList(path string, items []string, bad func(string) string) {
	seen := map[string]bool{}
	for i, s := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		if seen[s] {
			k.errorf(p, "duplicate entry %q", s)
			continue
		}
		seen[s] = true
		if msg := bad(s); msg != "" {
			k.errorf(p, "%s", msg)
		}
	}
}

// joinAnd lists words as "a", "a and b" or "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
