package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/kiln-images/kiln/internal/manifest"
)

var formatNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// checkFormats checks the declared manifest formats on their own and bound
// to the project's use cases, and the formats channels name.
func (k *checker) checkFormats() {
	targets := k.c.ManifestTargets()
	for _, name := range sortedKeys(k.c.ManifestFormats) {
		p := joinPath("manifest_formats", name)
		if name == DefaultFormat {
			k.keyErrorf(p, "%q names kiln's own format; call yours something else", name)
			continue
		}
		if !formatNameRE.MatchString(name) {
			k.keyErrorf(p, "invalid format name %q; use a lowercase letter, then up to 31 lowercase letters, digits or dashes", name)
		}
		mf := k.c.ManifestFormats[name]
		if mf == nil {
			k.errorf(p, "empty; a format needs key and fields")
			continue
		}
		for i, fd := range mf.Fields {
			if fd.Source != "" && fd.Source != string(manifest.SourceConstant) && fd.Value != nil {
				k.errorf(fmt.Sprintf("%s.fields[%d].value", p, i), "a field with a value is a constant; leave out source %q", fd.Source)
			}
			if fd.Source == string(manifest.SourceConstant) && fd.Value == nil {
				k.errorf(fmt.Sprintf("%s.fields[%d]", p, i), "a constant needs its value, e.g. value: ubuntu")
			}
		}
		f := mf.Format(name)
		if errs := f.Check(); len(errs) > 0 {
			for _, e := range errs {
				k.formatError(p, e)
			}
			continue
		}
		if _, errs := f.Bind(targets); len(errs) > 0 {
			for _, e := range errs {
				k.formatError(p, e)
			}
		}
	}
	for _, name := range k.c.UseCaseNames() {
		u := k.c.UseCases[name]
		p := joinPath("use_cases", name) + ".attributes"
		for _, a := range sortedKeys(u.Attributes) {
			if !manifest.ValidAttributeName(a) {
				k.keyErrorf(joinPath(p, a), "invalid attribute name %q; use a lowercase letter, then up to 31 lowercase letters, digits or _", a)
			}
			if u.Attributes[a] == "" {
				k.errorf(joinPath(p, a), "empty; an attribute is a value formats put in keys and fields")
			}
		}
	}
	for _, name := range k.c.ChannelNames() {
		ch := k.c.Channels[name]
		p := joinPath("channels", name)
		if f, ok := k.knownFormat(p+".format", ch.Format); ok && f != manifest.Default {
			if l, errs := f.Bind(targets); len(errs) == 0 && !l.Writable() {
				k.errorf(p+".format", "format %s gives several architectures of a use case one key, so kiln cannot write it; "+
					"add {arch} to its key, or list it under reads to read old files only", ch.Format)
			}
		}
		k.checkList(p+".reads", ch.Reads, func(r string) string {
			if formatName(r) == formatName(ch.Format) {
				return fmt.Sprintf("%q is the format the channel writes; reads lists other formats its history may be in", r)
			}
			return ""
		})
		for i, r := range ch.Reads {
			k.knownFormat(fmt.Sprintf("%s.reads[%d]", p, i), r)
		}
	}
}

// knownFormat reports an unknown format name at path.
func (k *checker) knownFormat(path, name string) (*manifest.Format, bool) {
	f, ok := k.c.ManifestFormat(name)
	if !ok {
		known := []string{DefaultFormat}
		for _, n := range sortedKeys(k.c.ManifestFormats) {
			if n != DefaultFormat {
				known = append(known, n)
			}
		}
		k.errorf(path, "unknown manifest format %q; known: %s (declare yours under manifest_formats)", name, strings.Join(known, ", "))
	}
	return f, ok
}

// formatError reports a problem of the format at p where it belongs.
func (k *checker) formatError(p string, e *manifest.FormatError) {
	path := p
	if e.Where != "" {
		path = p + "." + e.Where
	}
	// "fields[2]" and "arch" paths may name a part the document leaves
	// out; report then places it at the nearest part that is there.
	k.errorf(path, "%s", e.Msg)
}
