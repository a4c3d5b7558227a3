package config

import (
	"reflect"
)

// oneOf lists, per struct type, the fields of which at most one is set. A
// deployment that sets one of them inherits none of the others from the
// deployment it extends: a unit redefined as a process does not keep the
// vm settings it inherited.
var oneOf = map[reflect.Type][]string{
	reflect.TypeFor[Unit]():            {"vm", "process", "stack", "instance"},
	reflect.TypeFor[Input]():           {"value", "from", "secret"},
	reflect.TypeFor[SecretRef]():       {"env", "file", "ssm", "secrets_manager"},
	reflect.TypeFor[DeploymentImage](): {"channel", "id"},
}

// extendsChain returns name and the deployments it extends, nearest first.
// It stops before a name it has seen (a cycle, reported by validation) or
// that is not defined.
func extendsChain(deps map[string]*Deployment, name string) []string {
	var chain []string
	seen := map[string]bool{}
	for d, ok := deps[name]; ok && !seen[name]; d, ok = deps[name] {
		seen[name] = true
		chain = append(chain, name)
		name = d.Extends
	}
	return chain
}

// resolveExtends merges every deployment with the chain it extends,
// farthest ancestor first, so that each field comes from the nearest
// deployment that sets it. Whether a field is set is what the document
// says (d.isSet), not whether it is zero, so that "soak: 0" overrides an
// inherited soak.
func resolveExtends(c *Config, d *decoder) {
	merged := make(map[string]*Deployment, len(c.Deployments))
	for name := range c.Deployments {
		chain := extendsChain(c.Deployments, name)
		out := copyValue(reflect.ValueOf(c.Deployments[chain[len(chain)-1]])).Interface().(*Deployment)
		for i := len(chain) - 2; i >= 0; i-- {
			child := copyValue(reflect.ValueOf(c.Deployments[chain[i]])).Interface().(*Deployment)
			mergeValue(reflect.ValueOf(child).Elem(), reflect.ValueOf(out).Elem(), joinPath("deployments", chain[i]), d)
			out = child
		}
		out.Name = name
		merged[name] = out
	}
	c.Deployments = merged
}

// mergeValue fills what dst (decoded at path) does not set from src, which
// it extends.
func mergeValue(dst, src reflect.Value, path string, d *decoder) {
	switch dst.Kind() {
	case reflect.Struct:
		if dst.Type() == durationType || dst.Type() == sizeType {
			return
		}
		fields := yamlFields(dst.Type())
		skip := map[string]bool{}
		if group := oneOf[dst.Type()]; group != nil {
			for _, name := range group {
				if d.isSet(joinPath(path, name)) {
					for _, g := range group {
						skip[g] = g != name
					}
					break
				}
			}
		}
		for name, i := range fields {
			if skip[name] {
				continue
			}
			fp := joinPath(path, name)
			df, sf := dst.Field(i), src.Field(i)
			switch {
			case !d.isSet(fp):
				df.Set(copyValue(sf))
			case df.Kind() == reflect.Struct, df.Kind() == reflect.Map:
				mergeValue(df, sf, fp, d)
			case df.Kind() == reflect.Pointer && df.Elem().Kind() == reflect.Struct && !sf.IsNil():
				mergeValue(df.Elem(), sf.Elem(), fp, d)
			}
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMap(dst.Type()))
		}
		for _, k := range src.MapKeys() {
			sv := src.MapIndex(k)
			dv := dst.MapIndex(k)
			switch {
			case !dv.IsValid():
				dst.SetMapIndex(k, copyValue(sv))
			case dv.Kind() == reflect.Pointer && dv.Elem().Kind() == reflect.Struct && !sv.IsNil():
				mergeValue(dv.Elem(), sv.Elem(), joinPath(path, k.String()), d)
			}
		}
	}
}

// copyValue returns a deep copy of v: deployments that extend one another
// must not share pointers, maps or slices, which defaults then change.
func copyValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(copyValue(v.Elem()))
		return p
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		for _, k := range v.MapKeys() {
			m.SetMapIndex(k, copyValue(v.MapIndex(k)))
		}
		return m
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(copyValue(v.Index(i)))
		}
		return s
	case reflect.Struct:
		s := reflect.New(v.Type()).Elem()
		s.Set(v)
		for i := range v.NumField() {
			if s.Field(i).CanSet() {
				s.Field(i).Set(copyValue(v.Field(i)))
			}
		}
		return s
	}
	return v
}

// Instantiate returns a copy of the template t as the deployment name,
// for a personal deployment.
func (t *Deployment) Instantiate(name string) *Deployment {
	out := copyValue(reflect.ValueOf(t)).Interface().(*Deployment)
	out.Name = name
	out.Template = false
	out.Extends = t.Name
	return out
}
