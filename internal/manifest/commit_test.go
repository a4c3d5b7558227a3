package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A channel that moved from the consumer's older format to its newer one:
// HEAD holds the file in the older format, kiln wrote the newer, and a
// hand edit of another entry waits in the work tree. CommitEntries reads
// both versions in their formats, commits kiln's entry alone in the format
// kiln writes, names the change as that format does, and leaves the hand
// edit uncommitted.
func TestCommitEntriesInDeclaredFormats(t *testing.T) {
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	ctx := t.Context()
	targets := []Target{
		{UseCase: "web", Arch: "x86_64", Key: "web"},
		{UseCase: "db", Arch: "x86_64", Key: "db"},
	}
	older := bind(t, &Format{
		Name: "older", Key: "{use_case}",
		Fields:   []Field{{Name: "id", Source: SourceID}, {Name: "os", Source: SourceConstant, Value: "debian"}},
		Encoding: Encoding{Indent: 4},
	}, targets)
	newer := bind(t, &Format{
		Name: "newer", Key: "img-{use_case}",
		Fields: []Field{
			{Name: "ami", Source: SourceID}, {Name: "arch", Source: SourceArch},
			{Name: "deprecates", Source: SourceDeprecation, Layout: "2006-01-02T15:04:05.000Z"},
		},
		Encoding: Encoding{Indent: 2, TrailingNewline: true},
	}, targets)
	entry := func(id string) Entry { return Entry{Architecture: "x86_64", ID: id} }
	const a, b, c, d = "ami-0aaaaaaaaaaaaaaaa", "ami-0bbbbbbbbbbbbbbbb", "ami-0cccccccccccccccc", "ami-0dddddddddddddddd"

	dir := t.TempDir()
	path := filepath.Join(dir, "manifests", "stable.json")
	os.MkdirAll(filepath.Dir(path), 0o755)
	write := func(l *Layout, m Manifest) {
		t.Helper()
		data, err := l.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitT(t, dir, nil, "init", "-q")
	write(older, Manifest{"web": {"us-east-1": entry(a)}, "db": {"us-east-1": entry(b)}})
	gitT(t, dir, nil, "add", "-A")
	gitT(t, dir, nil, "commit", "-q", "-m", "older format")
	before := gitT(t, dir, nil, "rev-parse", "HEAD")

	// kiln changed web (writing the newer format); someone changed db.
	write(newer, Manifest{"web": {"us-east-1": entry(c)}, "db": {"us-east-1": entry(d)}})

	st, err := CheckCommit(ctx, path, "stable: promote web", false, newer, older)
	if err != nil {
		t.Fatal(err)
	}
	if st.HeadLayout != older || st.WorkLayout != newer {
		t.Fatalf("CheckCommit read HEAD as %s and the work tree as %s", st.HeadLayout.Format().Name, st.WorkLayout.Format().Name)
	}
	if e, _ := st.Work.Get("db", "us-east-1"); e.ID != d {
		t.Fatalf("work tree's db: %+v", e)
	}
	theirs := DiffLayouts(Pick(st.Head, []string{"db"}), st.HeadLayout, Pick(st.Work, []string{"db"}), st.WorkLayout)
	if len(theirs) != 1 || theirs[0].UseCase != "img-db" {
		t.Fatalf("the hand edit of db, as the file names it: %+v", theirs)
	}

	// Without the channel's formats the files do not decode: nothing is
	// committed.
	if _, err := CommitEntries(ctx, path, []string{"web"}, Message{Subject: "x"}, false); err == nil {
		t.Fatal("CommitEntries in kiln's format read a file in another format")
	}
	if head := gitT(t, dir, nil, "rev-parse", "HEAD"); head != before {
		t.Fatal("a failed CommitEntries made a commit")
	}

	res, err := CommitEntries(ctx, path, []string{"web"}, Message{Subject: "stable: promote web"}, false, newer, older)
	if err != nil {
		t.Fatal(err)
	}
	if res.Hash == "" || len(res.Changes) != 1 || res.Changes[0].UseCase != "img-web" {
		t.Fatalf("CommitEntries = %+v", res)
	}
	msg := gitT(t, dir, nil, "log", "-1", "--format=%B", res.Hash)
	if !strings.Contains(msg, `~ img-web.us-east-1.ami: "`+a+`" -> "`+c+`"`) || strings.Contains(msg, "db") {
		t.Errorf("commit message names the change as the newer format does, and web's alone:\n%s", msg)
	}
	committed := gitT(t, dir, nil, "show", "HEAD:manifests/stable.json")
	want, _ := newer.Encode(Manifest{"web": {"us-east-1": entry(c)}, "db": {"us-east-1": entry(b)}})
	if committed+"\n" != string(want) {
		t.Errorf("committed file, want the newer format with db as HEAD had it:\n%s\nwant:\n%s", committed, want)
	}
	if s := gitT(t, dir, nil, "status", "--porcelain"); s != "M manifests/stable.json" {
		t.Errorf("status after the commit (the hand edit of db stays in the work tree): %q", s)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), d) {
		t.Errorf("the work tree lost the hand edit:\n%s", data)
	}

	// A rerun has nothing to commit.
	if res, err := CommitEntries(ctx, path, []string{"web"}, Message{Subject: "again"}, false, newer, older); err != nil || res.Hash != "" {
		t.Errorf("rerun: %+v, %v", res, err)
	}
}
