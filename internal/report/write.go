package report

import (
	"encoding/json"
	"io"
	"reflect"

	"github.com/kiln-images/kiln/internal/output"
)

// Write writes report v (a struct or a pointer to one) as indented JSON.
// Empty lists and maps are written as [] and {}, never null, whether or not
// the code that filled v made them: the contract holds for every report
// without each producer remembering it.
func Write(w io.Writer, v any) error {
	return output.WriteJSON(w, filled(v))
}

// WriteLine writes report v as JSON on one line, as documents on stderr
// are written: one line among the JSON log lines of -o json.
func WriteLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(filled(v))
}

// filled returns a copy of v with empty lists and maps in place of nil.
func filled(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	c := reflect.New(rv.Type()).Elem()
	c.Set(rv)
	fillEmpty(c)
	return c.Interface()
}

// fillEmpty replaces nil slices and maps in v (addressable) with empty
// ones, in every struct field and slice element it can reach. A pointer's
// target is changed in place; reports hold pointers only to values made
// for them.
func fillEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			fillEmpty(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				fillEmpty(f)
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			if v.CanSet() {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		for i := range v.Len() {
			fillEmpty(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() && v.CanSet() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	}
}
