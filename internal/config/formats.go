package config

import (
	"slices"

	"github.com/kiln-images/kiln/internal/manifest"
)

// DefaultFormat names kiln's own manifest format in channels.*.format and
// reads.
const DefaultFormat = "kiln"

// ManifestFormat declares a consumer's manifest format: manifest_formats.NAME.
// See manifest.Format for what each part means.
type ManifestFormat struct {
	// Key is the key template, e.g. "{os}-{arch}-{role}".
	Key string `yaml:"key"`
	// Arch maps kiln's architecture names to the file's, e.g. x86_64: amd64.
	Arch map[string]string `yaml:"arch"`
	// Fields are an entry's fields in file order.
	Fields []FormatField `yaml:"fields"`
	// Encoding is the layout of the bytes.
	Encoding FormatEncoding `yaml:"encoding"`
}

// FormatField is one field of a format. Source says what it holds; a
// field with Value (and no source) is a constant, one with Attribute (and
// no source) holds that use-case attribute.
type FormatField struct {
	Name      string  `yaml:"name"`
	Source    string  `yaml:"source"`
	Attribute string  `yaml:"attribute"`
	Value     *string `yaml:"value"`
	// Layout is the Go time layout of a deprecation_time field, default
	// RFC 3339 (2006-01-02T15:04:05Z07:00).
	Layout string `yaml:"layout"`
}

// FormatEncoding is how a format's bytes are laid out.
type FormatEncoding struct {
	// Indent is the spaces per level (default 2); 0 writes one line.
	Indent int `yaml:"indent"`
	// Compact, on one line, leaves out the spaces after ':' and ','.
	Compact bool `yaml:"compact"`
	// TrailingNewline ends the file with a newline (default true).
	TrailingNewline bool `yaml:"trailing_newline"`
	// Escape is json (default), html or ascii.
	Escape string `yaml:"escape"`
}

// Format returns the format as the manifest package takes it.
func (f *ManifestFormat) Format(name string) *manifest.Format {
	out := &manifest.Format{
		Name: name,
		Key:  f.Key,
		Arch: f.Arch,
		Encoding: manifest.Encoding{
			Indent:          f.Encoding.Indent,
			Compact:         f.Encoding.Compact,
			TrailingNewline: f.Encoding.TrailingNewline,
			Escape:          manifest.Escape(f.Encoding.Escape),
		},
	}
	for _, fd := range f.Fields {
		mf := manifest.Field{Name: fd.Name, Source: manifest.FieldSource(fd.Source), Attribute: fd.Attribute, Layout: fd.Layout}
		if fd.Value != nil {
			mf.Value = *fd.Value
		}
		out.Fields = append(out.Fields, mf)
	}
	return out
}

// ManifestFormat returns the format called name: a declared one, or kiln's
// own for "kiln" or "".
func (c *Config) ManifestFormat(name string) (*manifest.Format, bool) {
	if name == "" || name == DefaultFormat {
		return manifest.Default, true
	}
	f, ok := c.ManifestFormats[name]
	if !ok {
		return nil, false
	}
	return f.Format(name), true
}

// ManifestTargets are the project's use cases and architectures as
// manifest formats bind them, with kiln's keys (UseCase.ManifestKey).
func (c *Config) ManifestTargets() []manifest.Target {
	var out []manifest.Target
	for _, name := range c.UseCaseNames() {
		u := c.UseCases[name]
		for _, arch := range u.Architectures {
			out = append(out, manifest.Target{UseCase: u.Name, Arch: arch, Key: u.ManifestKey(arch), Attributes: u.Attributes})
		}
	}
	return out
}

// ChannelFormats returns the names of the formats a channel's manifest may
// be in: the one it writes first, then those it reads.
func (c *Config) ChannelFormats(channel string) []string {
	ch := c.Channels[channel]
	out := []string{formatName(ch.Format)}
	for _, r := range ch.Reads {
		if !slices.Contains(out, formatName(r)) {
			out = append(out, formatName(r))
		}
	}
	return out
}

// formatName is the name of a format as channels give it: "" is kiln's.
func formatName(name string) string {
	if name == "" {
		return DefaultFormat
	}
	return name
}

// applyFormatDefaults fills in what the document left out of the formats.
func applyFormatDefaults(c *Config, d *decoder) {
	for name, f := range c.ManifestFormats {
		if f == nil {
			continue
		}
		p := joinPath("manifest_formats", name) + ".encoding"
		if !d.isSet(p + ".indent") {
			f.Encoding.Indent = 2
		}
		if !d.isSet(p + ".trailing_newline") {
			f.Encoding.TrailingNewline = true
		}
		if f.Encoding.Escape == "" {
			f.Encoding.Escape = string(manifest.EscapeJSON)
		}
		for i := range f.Fields {
			fd := &f.Fields[i]
			switch {
			case fd.Source != "":
			case fd.Value != nil:
				fd.Source = string(manifest.SourceConstant)
			case fd.Attribute != "":
				fd.Source = string(manifest.SourceAttribute)
			}
		}
	}
}
