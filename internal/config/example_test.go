package config

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// exampleFS returns the example project as kiln init sees it.
func exampleFS(t testing.TB) fs.FS {
	t.Helper()
	sub, err := fs.Sub(Example, "example")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// exampleDir writes the example project to a new directory.
func exampleDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "project")
	if err := os.CopyFS(dir, exampleFS(t)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExampleFiles(t *testing.T) {
	sub := exampleFS(t)
	var files []string
	err := fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".gitignore", "files/web/80-dhcp.network", "files/web/kiln-demo-web", "files/web/kiln-demo-web.service",
		"files/welcome.txt", "kiln.yaml", "scripts/provision.sh", "scripts/web.sh", "tests/boot.sh"}
	if !slices.Equal(files, want) {
		t.Errorf("example files = %q, want %q (kiln makes manifests/ itself)", files, want)
	}
	ignore, err := fs.ReadFile(sub, ".gitignore")
	if err != nil || !slices.Contains(strings.Fields(string(ignore)), ".kiln/") {
		t.Errorf(".gitignore = %q, %v; want a line .kiln/", ignore, err)
	}
}

func TestExampleParses(t *testing.T) {
	dir := exampleDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("kiln.yaml", data, dir)
	if err != nil {
		t.Fatalf("the example has errors:\n%v", err)
	}
	u, err := c.UseCase("debian-sandbox")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range u.Provision {
		kinds = append(kinds, s.Kind())
	}
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"project", c.Project, "demo"},
		{"backend", c.Backend.Type, "local"},
		{"regions", c.Regions, []string{"local-a", "local-b", "local-c"}},
		{"build_region", c.BuildRegion, "local-a"},
		{"cost tag", c.Tags(), map[string]string{"deployment_name": "demo"}},
		{"use cases", c.UseCaseNames(), []string{"debian-sandbox"}},
		{"architectures", u.Architectures, []string{"x86_64"}},
		{"suite", u.Base.Suite, "bookworm"},
		{"steps", kinds, []string{"shell", "file", "file", "shell"}},
		{"deployments", c.DeploymentNames(), []string{"dev", "prod", "staging"}},
		{"dev runs", c.Deployments["dev"].Image, DeploymentImage{UseCase: "debian-sandbox", Arch: "x86_64", Channel: "latest"}},
		{"staging region", c.Deployments["staging"].Region, "local-b"},
		{"staging's web (dev's)", c.Deployments["staging"].Units["web"].VM.Ports, map[string]int{"http": 8080}},
		{"prod gates", c.Deployments["prod"].Promote.Approval, true},
		{"shell step", u.Provision[0].Shell, "scripts/provision.sh"},
		{"tests", u.Tests, []string{"tests/boot.sh"}},
		{"public", u.Publish.Public, true},
		{"deprecate_after", u.Publish.DeprecateAfter.String(), "365d"},
		{"exports", u.Exports, []string{"qcow2"}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.field, tc.got, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "manifests")); !os.IsNotExist(err) {
		t.Errorf("the example has a manifests directory (%v); kiln makes it", err)
	}
}

// The example doubles as the reference: every field of the config appears
// in it, set or in a comment.
func TestExampleDocumentsEveryField(t *testing.T) {
	data, err := Example.ReadFile("example/kiln.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for name, i := range yamlFields(typ) {
			// The name as a key: at a line start, after "{", "," or "#".
			if !regexp.MustCompile(`(^|[\s{,#-])` + name + `:`).MatchString(text) {
				t.Errorf("field %s.%s is not in the example kiln.yaml", path, name)
			}
			walk(typ.Field(i).Type, path+"."+name)
		}
	}
	walk(reflect.TypeFor[Config](), "config")
	if len(seen) < 10 {
		t.Errorf("walked only %d struct types", len(seen))
	}
}

// The example's scripts are valid shell.
func TestExampleScripts(t *testing.T) {
	dir := exampleDir(t)
	for _, script := range []string{"scripts/provision.sh", "scripts/web.sh", "tests/boot.sh"} {
		out, err := exec.Command("sh", "-n", filepath.Join(dir, script)).CombinedOutput()
		if err != nil {
			t.Errorf("sh -n %s: %v\n%s", script, err, out)
		}
	}
}
