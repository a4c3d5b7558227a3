package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Schemas returns every schema file's name and contents: one per report
// kind and one for kiln.yaml, with the Go comments as descriptions (see
// Comments for where they are read from).
func Schemas() (map[string][]byte, error) {
	comments, err := Comments()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, k := range kinds {
		data, err := k.JSONSchema(comments)
		if err != nil {
			return nil, err
		}
		out[k.FileName()] = data
	}
	data, err := ConfigSchema(comments)
	if err != nil {
		return nil, err
	}
	out[ConfigSchemaFile] = data
	return out, nil
}

// WriteSchemas writes every schema into dir and removes schema files there
// that no report has any more. It runs in this package's directory.
func WriteSchemas(dir string) error {
	files, err := Schemas()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.schema.json"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if _, ok := files[filepath.Base(f)]; !ok {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for name, data := range files {
		if !strings.HasSuffix(name, ".schema.json") {
			return fmt.Errorf("schema file %s: want a .schema.json name", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
