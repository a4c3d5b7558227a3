package awsrelease

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteReportKeepsTheProse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.md")
	prose := "# Title\n\nWritten by hand.\n\n"
	after := "\n\n## Notes\n\nAlso by hand.\n"
	os.WriteFile(path, []byte(prose+beginMarker+"\nold numbers\n"+endMarker+after), 0o644)
	for _, section := range []string{"first numbers\n", "second numbers\n"} {
		if err := WriteReport(path, section); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		text := string(data)
		if !strings.HasPrefix(text, prose) || !strings.HasSuffix(text, after) {
			t.Fatalf("prose changed:\n%s", text)
		}
		if !strings.Contains(text, section) || strings.Contains(text, "old numbers") || strings.Count(text, beginMarker) != 1 {
			t.Fatalf("section not replaced:\n%s", text)
		}
	}
}

func TestReportRowsDeriveTheRunWithoutTheBootTest(t *testing.T) {
	req := func(n int) []Request { return make([]Request, n) }
	rep := Report{Reference: "packer", Latency: 100 * time.Millisecond, Results: []Result{
		{Variant: "kiln phases", Wall: 10 * time.Second, Log: req(10), Phases: []Phase{
			{Name: "build", Wall: 4 * time.Second, Log: req(4)},
			{Name: "test", Wall: 3 * time.Second, Log: req(3)},
			{Name: "publish", Wall: 3 * time.Second, Log: req(3)},
		}},
		{Variant: "packer", Wall: 2 * time.Second, Log: req(5)},
	}}
	rows := rep.rows()
	if len(rows) != 3 || rows[0].name != "packer" {
		t.Fatalf("rows %+v, want packer first and two kiln rows", rows)
	}
	noTest := rows[2]
	if !strings.Contains(noTest.name, "no boot test") || noTest.walls[0] != 7 || noTest.reqs[0] != 7 {
		t.Fatalf("row without the test: %+v, want 7 s and 7 requests", noTest)
	}
	md := rep.Markdown()
	if !strings.Contains(md, "| kiln phases: build+test+replicate+publish | 1 | 10.00 | 10.00–10.00 | 10 | 5.00 | 2.00 |") {
		t.Fatalf("table:\n%s", md)
	}
}
