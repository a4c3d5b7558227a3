package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// TestRefusesBadInput feeds names, tags, ids and paths that could escape
// the store or break it: each call must fail with an error matching
// cloud.ErrInvalid that names the field and quotes the value, and nothing
// may appear outside the store or change inside it.
func TestRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	outer := t.TempDir()
	root := filepath.Join(outer, "store")
	b, err := New(config.LocalBackend{BlockPublicAccess: []string{"home-2"}}, root, []string{"home-1", "home-2"})
	if err != nil {
		t.Fatal(err)
	}
	good := seed(t, b, "home-1", "good", map[string]string{"k": "v"}, 4096)
	disk, _ := writeRandom(t, t.TempDir(), "disk.raw", 4096)
	long := func(n int) string { return strings.Repeat("x", n) }
	manyTags := make(map[string]string)
	for i := range MaxTags + 1 {
		manyTags[fmt.Sprintf("k%d", i)] = "v"
	}
	imp := func(mod func(*ImportInput)) error {
		in := ImportInput{Region: "home-1", Name: "n", Arch: "x86_64", Disk: disk}
		mod(&in)
		_, err := b.ImportImage(ctx, in)
		return err
	}
	cp := func(mod func(*cloud.CopyInput)) error {
		in := cloud.CopyInput{SourceRegion: "home-1", SourceID: good.ID, Region: "home-2", Token: "t"}
		mod(&in)
		_, err := b.CopyImage(ctx, in)
		return err
	}
	dirAsset := filepath.Join(t.TempDir(), "work")

	for _, tc := range []struct {
		name  string
		field string // must appear in the error
		value string // must appear quoted in the error
		err   error
	}{
		{"name with separator", "name", "../escape", imp(func(in *ImportInput) { in.Name = "../escape" })},
		{"name with backslash", "name", `a\b`, imp(func(in *ImportInput) { in.Name = `a\b` })},
		{"name dot-dot", "name", "..", imp(func(in *ImportInput) { in.Name = ".." })},
		{"absolute name", "name", "/etc/passwd", imp(func(in *ImportInput) { in.Name = "/etc/passwd" })},
		{"name with NUL", "name", "a\x00b", imp(func(in *ImportInput) { in.Name = "a\x00b" })},
		{"name with newline", "name", "a\nb", imp(func(in *ImportInput) { in.Name = "a\nb" })},
		{"empty name", "name", "", imp(func(in *ImportInput) { in.Name = "" })},
		{"long name", "name", long(129), imp(func(in *ImportInput) { in.Name = long(129) })},
		{"invalid UTF-8 name", "name", "\xff", imp(func(in *ImportInput) { in.Name = "\xff" })},
		{"architecture", "architecture", "x86/64", imp(func(in *ImportInput) { in.Arch = "x86/64" })},
		{"tag key separator", "tag key", "a/b", imp(func(in *ImportInput) { in.Tags = map[string]string{"a/b": "v"} })},
		{"tag key dot-dot", "tag key", "..", imp(func(in *ImportInput) { in.Tags = map[string]string{"..": "v"} })},
		{"tag value separator", "tags[k]", "../../x", imp(func(in *ImportInput) { in.Tags = map[string]string{"k": "../../x"} })},
		{"tag value control", "tags[k]", "a\tb", imp(func(in *ImportInput) { in.Tags = map[string]string{"k": "a\tb"} })},
		{"long tag key", "tag key", long(129), imp(func(in *ImportInput) { in.Tags = map[string]string{long(129): "v"} })},
		{"long tag value", "tags[k]", long(257), imp(func(in *ImportInput) { in.Tags = map[string]string{"k": long(257)} })},
		{"too many tags", "tags", "", imp(func(in *ImportInput) { in.Tags = manyTags })},
		{"token control", "token", "a\x00", imp(func(in *ImportInput) { in.Token = "a\x00" })},
		{"export format", "export format", "../qcow2", imp(func(in *ImportInput) { in.Exports = map[string]string{"../qcow2": disk} })},
		{"disk in store", "disk", root, imp(func(in *ImportInput) { in.Disk = blobFiles(t, b, "home-1")[good.SHA256] })},
		{"disk missing", "disk", "", imp(func(in *ImportInput) { in.Disk = filepath.Join(outer, "nope") })},
		{"import region", "region", "../home-1", imp(func(in *ImportInput) { in.Region = "../home-1" })},
		{"copy source id", "source image id", "../../images/x", cp(func(in *cloud.CopyInput) { in.SourceID = "../../images/x" })},
		{"copy short id", "source image id", "img-123", cp(func(in *cloud.CopyInput) { in.SourceID = "img-123" })},
		{"copy upper-case id", "source image id", "img-0123456789ABCDEF0", cp(func(in *cloud.CopyInput) { in.SourceID = "img-0123456789ABCDEF0" })},
		{"copy name", "name", "a/b", cp(func(in *cloud.CopyInput) { in.Name = "a/b" })},
		{"copy tags", "tags[x]", "/abs", cp(func(in *cloud.CopyInput) { in.Tags = map[string]string{"x": "/abs"} })},
		{"copy region", "region", "home-1/..", cp(func(in *cloud.CopyInput) { in.Region = "home-1/.." })},
		{"copy source region", "region", "", cp(func(in *cloud.CopyInput) { in.SourceRegion = "" })},
		{"copy description", "description", "a\x1bb", cp(func(in *cloud.CopyInput) { in.Description = "a\x1bb" })},
		{"image id traversal", "image id", "../" + good.ID, errOf(b.Image(ctx, "home-1", "../"+good.ID))},
		{"image id with suffix", "image id", good.ID + "/..", errOf(b.Image(ctx, "home-1", good.ID+"/.."))},
		{"tag image id", "image id", "..", b.TagImage(ctx, "home-1", "..", map[string]string{"k": "v"})},
		{"tag image tags", "tag key", "a/b", b.TagImage(ctx, "home-1", good.ID, map[string]string{"a/b": "v"})},
		{"tag image total", "tags", "", b.TagImage(ctx, "home-1", good.ID, manyTags)},
		{"delete id", "image id", "/etc/passwd", b.DeleteImage(ctx, "home-1", "/etc/passwd")},
		{"deprecation id", "image id", "img-", b.SetDeprecation(ctx, "home-1", "img-", time.Now())},
		{"filter id", "filter id", "../x", errOf(b.ListImages(ctx, "home-1", cloud.Filter{IDs: []string{"../x"}}))},
		{"account short", "account", "12345", b.SetLaunchPermissions(ctx, "home-1", good.ID, cloud.LaunchPermissions{Accounts: []string{"12345"}})},
		{"account letters", "account", "abcdefghijkl", b.SetLaunchPermissions(ctx, "home-1", good.ID, cloud.LaunchPermissions{Accounts: []string{"abcdefghijkl"}})},
		{"organization", "organization", "o-1", b.SetLaunchPermissions(ctx, "home-1", good.ID, cloud.LaunchPermissions{Organizations: []string{"o-1"}})},
		{"organizational unit", "organizational unit", "ou-1", b.SetLaunchPermissions(ctx, "home-1", good.ID, cloud.LaunchPermissions{OrganizationalUnits: []string{"ou-1"}})},
		{"asset id", "asset id", "../x", b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "../x", Region: "home-1"}, dirAsset)},
		{"hidden asset id", "asset id", ".x", b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: ".x", Region: "home-1"}, dirAsset)},
		{"asset kind", "kind", "image", b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindImage, ID: "x", Region: "home-1"}, dirAsset)},
		{"asset relative path", "path", "work", b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "x", Region: "home-1"}, "work")},
		{"asset root path", "path", "/", b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "x", Region: "home-1"}, "/")},
		{"asset top dir", "path", "/etc", b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "x", Region: "home-1"}, "/etc")},
		{"asset unclean path", "path", dirAsset + "/../..", b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "x", Region: "home-1"}, dirAsset+"/../..")},
		{"asset path is the store", "path", root, b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "x", Region: "home-1"}, root)},
		{"asset path in the store", "path", root + "/home-2/images", b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "x", Region: "home-1"}, root+"/home-2/images")},
		{"asset tags", "tag key", "a/b", b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "x", Region: "home-1", Tags: map[string]string{"a/b": ""}}, dirAsset)},
		{"delete asset id", "asset id", "../../images/" + good.ID, b.DeleteAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "../../images/" + good.ID, Region: "home-1"})},
		{"delete asset kind", "kind", "volume", b.DeleteAsset(ctx, cloud.Asset{Kind: cloud.KindVolume, ID: "v", Region: "home-1"})},
		{"unknown region", "region", "nowhere", errOf(b.ListImages(ctx, "nowhere", cloud.Filter{}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, cloud.ErrInvalid) {
				t.Fatalf("error %v, want one matching cloud.ErrInvalid", tc.err)
			}
			msg := tc.err.Error()
			t.Log(msg)
			if !strings.Contains(msg, tc.field) {
				t.Errorf("error %q does not name the field %q", msg, tc.field)
			}
			if tc.value != "" && !strings.Contains(msg, fmt.Sprintf("%q", tc.value)) && !strings.Contains(msg, tc.value) {
				t.Errorf("error %q does not give the value %q", msg, tc.value)
			}
		})
	}

	// Public access blocked in home-2.
	cpy, err := b.CopyImage(ctx, cloud.CopyInput{SourceRegion: "home-1", SourceID: good.ID, Region: "home-2", Token: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	err = b.SetLaunchPermissions(ctx, "home-2", cpy.ID, cloud.LaunchPermissions{Public: true})
	if !errors.Is(err, cloud.ErrPublicAccessBlocked) {
		t.Errorf("making an image public in a blocked region: %v, want cloud.ErrPublicAccessBlocked", err)
	}
	if blocked, err := b.PublicAccessBlocked(ctx, "home-2"); !blocked || err != nil {
		t.Errorf("PublicAccessBlocked(home-2) = %v, %v", blocked, err)
	}
	if blocked, err := b.PublicAccessBlocked(ctx, "home-1"); blocked || err != nil {
		t.Errorf("PublicAccessBlocked(home-1) = %v, %v", blocked, err)
	}

	// Nothing changed: the good image is as it was, one image per region,
	// and nothing was written next to the store.
	img, err := b.Image(ctx, "home-1", good.ID)
	if err != nil || img.Public || len(img.Tags) != 1 || !img.Deprecation.IsZero() {
		t.Errorf("image after refused calls: %+v, %v", img, err)
	}
	if lp, _ := b.LaunchPermissions(ctx, "home-1", good.ID); lp.Public || len(lp.Accounts)+len(lp.Organizations)+len(lp.OrganizationalUnits) != 0 {
		t.Errorf("launch permissions after refused calls: %+v", lp)
	}
	if lp, _ := b.LaunchPermissions(ctx, "home-2", cpy.ID); lp.Public {
		t.Errorf("copy in the blocked region became public")
	}
	for _, r := range []string{"home-1", "home-2"} {
		if imgs, _ := b.ListImages(ctx, r, cloud.Filter{}); len(imgs) != 1 {
			t.Errorf("region %s has %d images, want 1", r, len(imgs))
		}
	}
	entries, _ := os.ReadDir(outer)
	if len(entries) != 1 || entries[0].Name() != "store" {
		t.Errorf("%s holds %v, want only the store", outer, entries)
	}
	if assets, _ := b.ListAssets(ctx, "home-1", cloud.Filter{}); len(assets) != 1 {
		t.Errorf("assets in home-1: %+v, want only the image", assets)
	}
}

func errOf[T any](_ T, err error) error { return err }

// TestNewRefusesBadConfig checks the constructor's validation.
func TestNewRefusesBadConfig(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		name    string
		cfg     config.LocalBackend
		root    string
		regions []string
		want    string
	}{
		{"relative root", config.LocalBackend{}, "store", []string{"a"}, `"store"`},
		{"no regions", config.LocalBackend{}, root, nil, "no regions"},
		{"region traversal", config.LocalBackend{}, root, []string{"../a"}, `"../a"`},
		{"region separator", config.LocalBackend{}, root, []string{"a/b"}, `"a/b"`},
		{"empty region", config.LocalBackend{}, root, []string{""}, "region is empty"},
		{"hidden region", config.LocalBackend{}, root, []string{".a"}, `".a"`},
		{"relative region path", config.LocalBackend{RegionPaths: map[string]string{"a": "elsewhere"}}, root, []string{"a"}, `region_paths[a]: "elsewhere"`},
		{"shared region path", config.LocalBackend{RegionPaths: map[string]string{"b": filepath.Join(root, "a")}}, root, []string{"a", "b"}, "both use directory"},
		{"account", config.LocalBackend{AccountID: "42"}, root, []string{"a"}, `account_id "42"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, tc.root, tc.regions)
			if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error matching cloud.ErrInvalid containing %s", err, tc.want)
			}
		})
	}
	b, err := New(config.LocalBackend{}, root, []string{"a", "b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if acct, _ := b.Account(context.Background()); acct != DefaultAccount {
		t.Errorf("default account %q, want %q", acct, DefaultAccount)
	}
	if b.Name() != "local" || len(b.Regions()) != 2 {
		t.Errorf("Name %q, Regions %v", b.Name(), b.Regions())
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("New wrote %v into the root; it should write nothing until used", entries)
	}
}
