package manifest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// readTestdata returns the bytes of testdata/name.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// designEntry is the entry in DESIGN.md's example.
var designEntry = Entry{
	Architecture: "x86_64",
	ID:           "ami-048b8191da9c5e202",
	Name:         "ubuntu",
	Public:       true,
}

// bigManifest is a manifest with several use cases, regions and the values
// that encoders tend to get wrong (HTML characters, non-ASCII, escapes).
func bigManifest() Manifest {
	m := Manifest{}
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "eu-central-1"}
	useCases := []struct {
		name, arch, dep, label string
		public                 bool
	}{
		{"aws-linux-ephemeral", "x86_64", "", "ubuntu", true},
		{"aws-linux-ephemeral-arm", "arm64", "2027-06-30T00:00:00Z", "ubuntu <arm> & friends", true},
		{"data-science-sandbox", "x86_64", "2026-12-31T23:59:59+01:00", "Jupyter für Datenküche", false},
		{"notebook-cluster", "arm64", "", `notebook "cluster" \ node`, false},
	}
	n := 0
	for _, uc := range useCases {
		for _, r := range regions {
			n++
			id := "ami-" + hex17(n)
			if n%3 == 0 {
				id = "ami-" + hex17(n)[:8]
			}
			m.Set(uc.name, r, Entry{Architecture: uc.arch, DeprecationTime: uc.dep, ID: id, Name: uc.label, Public: uc.public})
		}
	}
	return m
}

// hex17 renders n as 17 lowercase hex digits, scrambled so ids differ in
// more than their last digit.
func hex17(n int) string {
	const digits = "0123456789abcdef"
	x := uint64(n) * 0x9e3779b97f4a7c15
	b := make([]byte, 17)
	for i := range b {
		b[i] = digits[x&0xf]
		x = x>>4 | x<<60
	}
	return string(b)
}
