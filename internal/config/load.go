package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxFileSize is the largest config file kiln reads. Real ones are a few
// KiB; the limit keeps a wrong path (a disk image, a log) from being read
// whole.
const maxFileSize = 1 << 20

// Load reads, decodes and validates the config file at path. Relative paths
// in it are resolved against its directory. On bad input the error is an
// Errors holding every problem found.
func Load(path string) (*Config, error) {
	fail := func(msg string, err error) (*Config, error) {
		return nil, Errors{{File: path, Msg: msg, err: err}}
	}
	// A FIFO or a device would block the open (or the read) until someone
	// writes to it, and kiln with it: look before opening.
	if st, err := os.Stat(path); err == nil && !st.IsDir() && !st.Mode().IsRegular() {
		return fail(fmt.Sprintf("is not a regular file (%s); give the path of a kiln.yaml file", fileKind(st.Mode())), nil)
	}
	f, err := os.Open(path)
	if err != nil {
		return fail("cannot open: "+cause(err), err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fail("cannot read: "+cause(err), err)
	}
	if info.IsDir() {
		return fail("is a directory; give the path of a kiln.yaml file", nil)
	}
	if info.Size() > maxFileSize {
		return fail(tooLarge(info.Size()), nil)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return fail("cannot read: "+cause(err), err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fail("cannot make the path absolute: "+cause(err), err)
	}
	c, err := Parse(path, data, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	c.Path = abs
	return c, nil
}

// Parse decodes and validates a config already read. name is used in
// messages and as Config.Path; dir is the directory relative paths in the
// config are resolved against (empty: the working directory). On bad input
// the error is an Errors holding every problem found.
//
// Defaults are filled in (see the example kiln.yaml), and
// backend.local.root and backend.local.region_paths are made absolute.
func Parse(name string, data []byte, dir string) (*Config, error) {
	fail := func(line, col int, msg string) (*Config, error) {
		return nil, Errors{{File: name, Line: line, Col: col, Msg: msg}}
	}
	if len(data) > maxFileSize {
		return fail(0, 0, tooLarge(int64(len(data))))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fail(0, 0, "file is empty; `kiln init` writes an example")
	}
	if e := checkText(name, data); e != nil {
		return nil, Errors{e}
	}
	root, e := parseDocument(name, data)
	if e != nil {
		return nil, Errors{e}
	}
	if dir == "" {
		dir = "."
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return fail(0, 0, fmt.Sprintf("cannot resolve directory %q: %v", dir, err))
	}

	c := &Config{Path: name, Dir: absDir}
	d := newDecoder(name)
	d.decode("", root, reflect.ValueOf(c).Elem())
	if !d.tooBig {
		applyDefaults(c, d)
		newChecker(c, d).check()
	}
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	c.absolutize()
	return c, nil
}

func tooLarge(size int64) string {
	return fmt.Sprintf("file is %d bytes; a config may be at most 1 MiB (%d bytes)", size, maxFileSize)
}

// cause returns the operating system's reason from a path error, leaving
// out the path the caller's message already names.
func cause(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// checkText reports the first byte sequence that is not UTF-8 or is a
// control character YAML forbids, with its position; the YAML parser
// reports these without one.
func checkText(name string, data []byte) *Error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return &Error{File: name, Line: line, Col: col, Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x); the file must be UTF-8 text", data[i])}
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r >= 0x7f && r <= 0x9f && r != 0x85,
			r == 0xfffe || r == 0xffff:
			return &Error{File: name, Line: line, Col: col, Msg: fmt.Sprintf("control character %U is not allowed in YAML", r)}
		}
		i += size
		// Line breaks as YAML counts them: LF, CR LF, a lone CR, and the
		// Unicode breaks NEL, LS and PS.
		switch {
		case r == '\r' && i < len(data) && data[i] == '\n':
			// the LF that follows ends the line
			col++
		case r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029:
			line, col = line+1, 1
		default:
			col++
		}
	}
	return nil
}

const noSettings = "file has no settings; `kiln init` writes an example"

// parseDocument parses data as exactly one YAML document holding a
// mapping, and returns that mapping.
func parseDocument(name string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeNode(dec, &doc); err != nil {
		if err == io.EOF {
			return nil, &Error{File: name, Msg: noSettings}
		}
		return nil, syntaxError(name, err)
	}
	var next yaml.Node
	switch err := decodeNode(dec, &next); {
	case err == io.EOF:
	case err != nil:
		return nil, syntaxError(name, err)
	default:
		return nil, &Error{File: name, Line: next.Line, Col: next.Column, Msg: "a second YAML document starts here; a config is one document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: name, Msg: "not a single YAML document"}
	}
	root := doc.Content[0]
	if isNull(root) && root.Value == "" { // "---" and nothing else
		return nil, &Error{File: name, Msg: noSettings}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: root.Line, Col: root.Column,
			Msg: fmt.Sprintf("the document is %s; expected a mapping of settings (project, regions, use_cases, ...)", describe(root))}
	}
	return root, nil
}

// decodeNode reads the next document, turning a panic of the YAML library
// into an error: bad input must give a message, not a crash.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	return dec.Decode(n)
}

// syntaxError turns a YAML library error ("yaml: line 3: did not find
// expected key") into an Error with the line, when it gives one.
func syntaxError(name string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				line, msg = n, after
			}
		}
	}
	return &Error{File: name, Line: line, Msg: "invalid YAML: " + msg, err: err}
}

// fileKind names the type of a file that is not a regular file.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}
