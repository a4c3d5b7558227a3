package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-images/kiln/internal/manifest"
)

// Dir is the directory of the records, relative to the project's.
const Dir = "deployments"

// MaxSize is the largest record kiln reads.
const MaxSize = 1 << 20

// Path returns the path of deployment name's record in project dir.
func Path(projectDir, name string) string {
	return filepath.Join(projectDir, Dir, name+".json")
}

// Encode returns r in canonical form: keys sorted at every level,
// two-space indent, no HTML escaping, a trailing newline, empty lists and
// maps as [] and {} (never null, as Load reads them). Equal records encode
// to the same bytes.
func (r *Record) Encode() ([]byte, error) {
	r.fillEmpty()
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	// Through a generic value, whose maps encoding/json writes with sorted
	// keys; numbers stay as written.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Error is a record that cannot be read, naming the file and field.
type Error struct {
	File  string
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.File + ": " + e.Msg
	}
	return e.File + ": " + e.Field + ": " + e.Msg
}

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}[a-z0-9]$`)
	releaseRE = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,128}$`)
)

// Decode reads a record strictly: unknown fields, a second document, a
// wrong schema and values that cannot be right are errors naming file and
// field. want, when not empty, is the deployment the file must be for.
func Decode(file string, data []byte, want string) (*Record, error) {
	bad := func(field, format string, args ...any) (*Record, error) {
		return nil, &Error{File: file, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if len(data) > MaxSize {
		return bad("", "is %d bytes; a record may be at most %d", len(data), MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return bad("", "not a deployment record: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("", "data after the record")
	}
	switch {
	case r.Schema != Schema:
		return bad("schema", "%q; kiln reads %q", r.Schema, Schema)
	case !nameRE.MatchString(r.Name):
		return bad("name", "%q is not a deployment name", r.Name)
	case want != "" && r.Name != want:
		return bad("name", "%q, but the file is deployment %q's record", r.Name, want)
	case !slices.Contains(states, r.State):
		return bad("state", "unknown state %q", r.State)
	}
	for i, rel := range []*Release{r.Release, r.Previous} {
		field := []string{"release", "previous"}[i]
		if rel == nil {
			continue
		}
		if !releaseRE.MatchString(rel.ID) {
			return bad(field+".id", "%q is not a release id", rel.ID)
		}
		if len(rel.Images) == 0 {
			return bad(field+".images", "a release has at least one image")
		}
		for region, id := range rel.Images {
			if region == "" || id == "" || strings.ContainsAny(region+id, "/\x00") {
				return bad(field+".images", "%q: %q is not a region and image id", region, id)
			}
		}
	}
	if r.State == StateDeployed && r.Release == nil {
		return bad("release", "missing; a deployed deployment has a release")
	}
	for i, v := range r.Verifications {
		if v.At.IsZero() {
			return bad(fmt.Sprintf("verifications[%d].at", i), "missing")
		}
	}
	r.fillEmpty()
	return &r, nil
}

// fillEmpty makes absent maps and lists empty ones, so that records read
// from older files encode like new ones.
func (r *Record) fillEmpty() {
	if r.Units == nil {
		r.Units = map[string]Unit{}
	}
	if r.Outputs == nil {
		r.Outputs = map[string]string{}
	}
	for _, p := range []*[]string{&r.URLs} {
		if *p == nil {
			*p = []string{}
		}
	}
	if r.Verifications == nil {
		r.Verifications = []Verification{}
	}
	if r.Approvals == nil {
		r.Approvals = []Approval{}
	}
	if r.Retained == nil {
		r.Retained = []Retained{}
	}
	if r.History == nil {
		r.History = []Event{}
	}
	for _, rel := range []*Release{r.Release, r.Previous} {
		if rel == nil {
			continue
		}
		if rel.Templates == nil {
			rel.Templates = map[string]string{}
		}
		if rel.Parameters == nil {
			rel.Parameters = map[string]string{}
		}
		if rel.Secrets == nil {
			rel.Secrets = map[string]string{}
		}
	}
	for i := range r.Verifications {
		if r.Verifications[i].Checks == nil {
			r.Verifications[i].Checks = []CheckResult{}
		}
	}
}

// Load reads deployment name's record from project dir; ok is false when
// there is none.
func Load(projectDir, name string) (r *Record, ok bool, err error) {
	path := Path(projectDir, name)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	r, err = Decode(path, data, name)
	return r, err == nil, err
}

// AtRef reads deployment name's record as it was at git ref.
func AtRef(ctx context.Context, projectDir, name, ref string) (*Record, error) {
	src := manifest.Source{Ref: ref, Path: "./" + Dir + "/" + name + ".json"}
	data, err := manifest.Read(ctx, projectDir, src)
	if err != nil {
		return nil, fmt.Errorf("deployment %s at %s: %w", name, ref, err)
	}
	return Decode(src.String(), data, name)
}

// Save writes r to its file in project dir, atomically.
func Save(projectDir string, r *Record) error {
	data, err := r.Encode()
	if err != nil {
		return err
	}
	path := Path(projectDir, r.Name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return manifest.WriteFile(path, data)
}

// List returns the names of the records in project dir, sorted.
func List(projectDir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(projectDir, Dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() && nameRE.MatchString(n) {
			names = append(names, n)
		}
	}
	return names, nil
}
