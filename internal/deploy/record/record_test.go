package record

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sample() *Record {
	r := New("dev", "demo", "local-a", "000000000000")
	r.State = StateDeployed
	at := time.Date(2026, 11, 21, 9, 30, 12, 0, time.UTC)
	r.Release = &Release{
		ID: "20261121.093012-3f9a1c2b", UseCase: "debian-sandbox", Arch: "x86_64", Version: "20261121.093012",
		ImageName: "debian-sandbox-x86_64-20261121.093012",
		Images:    map[string]string{"local-b": "img-00000000000000002", "local-a": "img-00000000000000001"},
		Channel:   "latest", Manifest: "manifests/latest.json", ManifestCommit: "abc",
		Templates: map[string]string{}, Parameters: map[string]string{"greeting": "<hi & bye>"},
		Secrets: map[string]string{"token": "env:DEMO_TOKEN"},
	}
	r.DeployedAt = at
	r.Units["web"] = Unit{Kind: "vm", Token: "t1"}
	r.Outputs["web.url.http"] = "http://127.0.0.1:34567"
	r.URLs = []string{"http://127.0.0.1:34567"}
	r.AddVerification(Verification{At: at, Release: r.Release.ID, Passed: true, Checks: []CheckResult{{Name: "health", Passed: true, Measurements: 3}}})
	r.AddEvent(Event{At: at, Action: "deploy", By: "alice", Release: r.Release.ID})
	return r
}

func TestEncodeCanonical(t *testing.T) {
	r := sample()
	a, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(a, []byte("}\n")) || !bytes.Contains(a, []byte("\n  \"account\": ")) {
		t.Errorf("not two-space indented with a trailing newline:\n%s", a)
	}
	// Keys sorted at every level, HTML not escaped.
	for _, pair := range [][2]string{{`"account"`, `"approvals"`}, {`"local-a"`, `"local-b"`}, {`"arch"`, `"channel"`}} {
		if bytes.Index(a, []byte(pair[0])) > bytes.Index(a, []byte(pair[1])) {
			t.Errorf("%s after %s", pair[0], pair[1])
		}
	}
	if !bytes.Contains(a, []byte("<hi & bye>")) {
		t.Error("HTML escaped")
	}
	back, err := Decode("dev.json", a, "dev")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := back.Encode()
	if !bytes.Equal(a, b) {
		t.Errorf("decode and encode changed the record:\n%s\n%s", a, b)
	}
	// Empty lists are [], never null.
	fresh, _ := New("qa", "demo", "r", "0").Encode()
	if bytes.Contains(fresh, []byte("null")) {
		t.Errorf("empty record has nulls:\n%s", fresh)
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := sample().Encode()
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", strings.Replace(string(good), `"name"`, `"colour": 1, "name"`, 1), `unknown field "colour"`},
		{"schema", strings.Replace(string(good), Schema, "kiln.other/v9", 1), `schema: "kiln.other/v9"`},
		{"other deployment", string(good), `name: "dev", but the file is deployment "qa"'s record`},
		{"state", strings.Replace(string(good), `"state": "deployed"`, `"state": "sleeping"`, 1), `state: unknown state "sleeping"`},
		{"two documents", string(good) + "{}", "data after the record"},
		{"not json", "[", "not a deployment record"},
		{"no images", strings.Replace(strings.Replace(string(good), `"local-a": "img-00000000000000001",`, "", 1), `"local-b": "img-00000000000000002"`, "", 1), "release.images: a release has at least one image"},
	} {
		want := "dev"
		if tc.name == "other deployment" {
			want = "qa"
		}
		_, err := Decode("deployments/x.json", []byte(tc.doc), want)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "deployments/x.json: ") {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSaveLoadList(t *testing.T) {
	dir := t.TempDir()
	if names, err := List(dir); err != nil || len(names) != 0 {
		t.Fatalf("List of nothing: %v %v", names, err)
	}
	if _, ok, err := Load(dir, "dev"); ok || err != nil {
		t.Fatalf("Load of nothing: %v %v", ok, err)
	}
	r := sample()
	if err := Save(dir, r); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, Dir, "notes.txt"), []byte("x"), 0o644)
	got, ok, err := Load(dir, "dev")
	if err != nil || !ok || got.Release.ID != r.Release.ID {
		t.Fatalf("Load: %+v %v %v", got, ok, err)
	}
	if names, _ := List(dir); len(names) != 1 || names[0] != "dev" {
		t.Errorf("List = %v", names)
	}
	if imgs := got.Images(); len(imgs) != 2 {
		t.Errorf("Images = %v", imgs)
	}
}

func TestHistoryBounded(t *testing.T) {
	r := New("dev", "demo", "r", "0")
	for i := range MaxVerifications + 5 {
		r.AddVerification(Verification{At: time.Unix(int64(i), 0), Release: "x"})
	}
	for range MaxEvents + 5 {
		r.AddEvent(Event{Action: "deploy"})
	}
	if len(r.Verifications) != MaxVerifications || r.Verifications[0].At.Unix() != 5 || len(r.History) != MaxEvents {
		t.Errorf("kept %d verifications from %v, %d events", len(r.Verifications), r.Verifications[0].At, len(r.History))
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := sample().Encode()
	f.Add(good)
	fresh, _ := New("qa", "demo", "r", "0").Encode()
	f.Add(fresh)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode("x.json", data, "")
		if (r == nil) == (err == nil) {
			t.Fatalf("record %v and error %v", r != nil, err)
		}
		if err != nil {
			return
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		again, err := Decode("x.json", enc, "")
		if err != nil {
			t.Fatalf("an encoded record does not decode: %v\n%s", err, enc)
		}
		enc2, _ := again.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}
