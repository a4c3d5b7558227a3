package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxValues bounds how many values one document may decode to, counting
// each alias expansion, so that a small file cannot expand into a huge
// config (the "billion laughs").
const maxValues = 100_000

// decoder walks a yaml.Node tree against the config's Go types, guided by
// their yaml tags, and collects every problem with its position instead of
// stopping at the first. It remembers where each field was set so that the
// validation after it can point at the same places.
type decoder struct {
	file   string
	errs   Errors
	values map[string]*yaml.Node // field path → the node that set it
	keys   map[string]*yaml.Node // field path → its key in the mapping
	failed map[string]bool       // field paths whose value could not be decoded
	count  int                   // values decoded so far
	tooBig bool                  // count passed maxValues: decoding stopped
	active map[*yaml.Node]bool   // anchors being expanded, to catch cycles
	dups   map[*yaml.Node]bool   // duplicate keys already reported
}

func newDecoder(file string) *decoder {
	return &decoder{
		file:   file,
		values: map[string]*yaml.Node{},
		keys:   map[string]*yaml.Node{},
		failed: map[string]bool{},
		active: map[*yaml.Node]bool{},
		dups:   map[*yaml.Node]bool{},
	}
}

func (d *decoder) errorAt(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// fail reports that the value at path could not be decoded. Validation
// stays quiet about that path and everything under it.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.failed[path] = true
	d.errorAt(n, path, format, args...)
}

// isSet reports whether the document gave path a non-null value.
func (d *decoder) isSet(path string) bool {
	n, ok := d.values[path]
	for ok && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return ok && !isNull(n)
}

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// decode sets v from n. A null leaves v at its zero value.
func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	if d.tooBig {
		return
	}
	if d.count++; d.count > maxValues {
		d.tooBig = true
		d.errorAt(n, "", "the document has more than %d values (counting alias expansions); a kiln.yaml is far smaller", maxValues)
		return
	}
	if _, ok := d.values[path]; !ok {
		d.values[path] = n
	}
	// Problems with this value are reported where it is written: for an
	// alias, at the alias rather than at its anchor.
	at := n
	if n.Kind == yaml.AliasNode {
		target, leave, ok := d.enter(path, n)
		if !ok {
			return
		}
		defer leave()
		n = target
	}
	if isNull(n) {
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		s, ok := d.scalar(path, at, n, "a duration such as 90m, 12h, 7d or 2w")
		if !ok {
			return
		}
		dur, err := ParseDuration(s)
		if err != nil {
			d.fail(at, path, "%v; use a duration such as 90m, 12h, 7d or 2w", err)
			return
		}
		v.SetInt(int64(dur))
		return
	case t == sizeType:
		s, ok := d.scalar(path, at, n, "a size such as 2GiB")
		if !ok {
			return
		}
		size, err := ParseSize(s)
		if err != nil {
			d.fail(at, path, "%v", err)
			return
		}
		v.SetInt(int64(size))
		return
	}
	switch t.Kind() {
	case reflect.String:
		if s, ok := d.scalar(path, at, n, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(at, path, "expected true or false, found %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.fail(at, path, "expected a whole number, found %s", describe(n))
			return
		}
		var i int
		if err := n.Decode(&i); err != nil {
			d.fail(at, path, "number %s is out of range", n.Value)
			return
		}
		v.SetInt(int64(i))
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		d.decode(path, n, p.Elem())
		v.Set(p)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(at, path, "expected a list, found %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(fmt.Sprintf("%s[%d]", path, i), item, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(at, path, "expected a mapping of names to values, found %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for _, p := range d.pairs(path, n) {
			kp := joinPath(path, p.key.Value)
			d.keys[kp] = p.key
			e := reflect.New(t.Elem()).Elem()
			d.decode(kp, p.value, e)
			if e.Kind() == reflect.Pointer && e.IsNil() {
				e.Set(reflect.New(t.Elem().Elem())) // "name:" with nothing after it
			}
			m.SetMapIndex(reflect.ValueOf(p.key.Value), e)
		}
		v.Set(m)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(at, path, "expected a mapping of fields, found %s", describe(n))
			return
		}
		fields := yamlFields(t)
		for _, p := range d.pairs(path, n) {
			kp := joinPath(path, p.key.Value)
			i, ok := fields[p.key.Value]
			if !ok {
				d.errorAt(p.key, kp, "unknown field; allowed: %s", strings.Join(sortedKeys(fields), ", "))
				continue
			}
			d.keys[kp] = p.key
			d.decode(kp, p.value, v.Field(i))
		}
	default:
		// A field type added to config.go that this decoder does not know.
		d.fail(at, path, "internal error: kiln cannot decode %s fields", t)
	}
}

// scalar returns the text of a scalar. Numbers and booleans are accepted as
// their literal text, so "mode: 0644" and "version: 1.10" read as written.
func (d *decoder) scalar(path string, at, n *yaml.Node, want string) (string, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			return n.Value, true
		}
	}
	d.fail(at, path, "expected %s, found %s", want, describe(n))
	return "", false
}

// enter follows an alias, refusing one that is already being expanded
// (an anchor whose value contains an alias to itself). Call leave when done.
func (d *decoder) enter(path string, n *yaml.Node) (target *yaml.Node, leave func(), ok bool) {
	if n.Alias == nil || d.active[n.Alias] {
		d.fail(n, path, "alias *%s refers to a value that contains it", n.Value)
		return nil, nil, false
	}
	d.active[n.Alias] = true
	return n.Alias, func() { delete(d.active, n.Alias) }, true
}

type pair struct{ key, value *yaml.Node }

// pairs returns the key-value pairs of a mapping, with the pairs of merged
// mappings ("<<: *defaults") after its own and overridden by them. It
// reports duplicate and non-string keys.
func (d *decoder) pairs(path string, n *yaml.Node) []pair {
	var own, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSource(path, v)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			found := describe(k)
			if k.Kind == yaml.AliasNode {
				found = "an alias"
			}
			d.errorAt(k, path, "a key must be a plain name, found %s", found)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if !d.dups[k] {
				d.dups[k] = true
				d.errorAt(k, joinPath(path, k.Value), "duplicate key; first set at line %d", first.Line)
			}
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k, v})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key
			own = append(own, p)
		}
	}
	return own
}

// mergeSource returns the pairs a merge key's value brings: a mapping, or a
// list of mappings of which the earlier win.
func (d *decoder) mergeSource(path string, n *yaml.Node) []pair {
	at := n
	if n.Kind == yaml.AliasNode {
		target, leave, ok := d.enter(path, n)
		if !ok {
			return nil
		}
		defer leave()
		n = target
	}
	switch n.Kind {
	case yaml.MappingNode:
		return d.pairs(path, n)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, item := range n.Content {
			if item.Kind != yaml.AliasNode && item.Kind != yaml.MappingNode {
				d.fail(item, path, "a merge (<<) takes a mapping or a list of mappings, found %s in the list", describe(item))
				continue
			}
			for _, p := range d.mergeSource(path, item) {
				if !seen[p.key.Value] {
					seen[p.key.Value] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.fail(at, path, "a merge (<<) takes a mapping or a list of mappings, found %s", describe(n))
	return nil
}

// yamlFields maps the yaml names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe says what a node is, for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		if n.Alias != nil && n.Alias.Kind != yaml.AliasNode {
			return describe(n.Alias)
		}
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 60 {
			v = v[:57] + "..."
		}
		switch tag := n.ShortTag(); tag {
		case "!!null":
			return "nothing"
		case "!!str":
			return strconv.Quote(v)
		case "!!int", "!!float", "!!bool":
			return v
		default:
			return tag + " " + strconv.Quote(v)
		}
	}
	return "a document"
}

// joinPath extends a field path by a mapping key, quoting keys that would
// make the path ambiguous.
func joinPath(path, key string) string {
	if key == "" || strings.ContainsFunc(key, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-')
	}) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// parentPath returns the path of the mapping or list that holds p; ok is
// false for the root.
func parentPath(p string) (parent string, ok bool) {
	if p == "" {
		return "", false
	}
	last := 0
	for i := 0; i < len(p); {
		switch p[i] {
		case '"':
			q, err := strconv.QuotedPrefix(p[i:])
			if err != nil {
				return "", true
			}
			i += len(q)
			continue
		case '.', '[':
			last = i
		}
		i++
	}
	return p[:last], true
}
