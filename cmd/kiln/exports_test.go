package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/report"
)

// checkExports checks that exports has one export per format, each a
// file whose size and sha256 are the ones given.
func checkExports(t *testing.T, exports []cloud.Export, formats ...string) {
	t.Helper()
	if len(exports) != len(formats) {
		t.Fatalf("exports %+v, want formats %v", exports, formats)
	}
	for i, e := range exports {
		data, err := os.ReadFile(e.Location)
		if err != nil {
			t.Errorf("export %s: %v", e.Format, err)
			continue
		}
		sum := sha256.Sum256(data)
		if e.Format != formats[i] || e.Size != int64(len(data)) || e.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("export %+v: the file has %d bytes, sha256 %x", e, len(data), sum)
		}
	}
}

// Every export's path, size and sha256 are in the release report and in
// kiln assets (table and JSON).
func TestExportsLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	data, _ := os.ReadFile(w.cfg)
	os.WriteFile(w.cfg, []byte(strings.Replace(string(data), "    publish: {public: true, deprecate_after: 30d}\n",
		"    publish: {public: true, deprecate_after: 30d}\n    exports: [qcow2, vmdk]\n", 1)), 0o644)
	rel, rep := w.releaseReport(t, "sandbox", "", "latest", time.Now())
	checkExports(t, rep.Publish.Exports, "qcow2", "vmdk")

	out, stderr, code := w.kiln(t, "assets", "--run", rel.run, "-o", "json")
	var ar report.Assets
	if code != 0 || json.Unmarshal([]byte(out), &ar) != nil || len(ar.Assets) != 3 {
		t.Fatalf("assets: exit %d\n%s%s", code, out, stderr)
	}
	for _, a := range ar.Assets {
		checkExports(t, a.Exports, "qcow2", "vmdk")
	}
	out, _, _ = w.kiln(t, "assets", "--run", rel.run)
	e := rep.Publish.Exports[0]
	for _, want := range []string{"EXPORT", e.Location, e.SHA256} {
		if !strings.Contains(out, want) {
			t.Errorf("assets table lacks %q:\n%s", want, out)
		}
	}
}
