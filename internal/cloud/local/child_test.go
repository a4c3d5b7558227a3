package local

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// The crash and concurrency tests run the store in child processes: the
// test binary started again with childEnv set runs runChild instead of the
// tests.
const (
	childEnv     = "KILN_LOCAL_TEST_CHILD"
	childSpecEnv = "KILN_LOCAL_TEST_SPEC"
	tokenTag     = "test-token" // tag recording the token of the call that made an image
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// childSpec tells a child process which store to use and what to do.
type childSpec struct {
	Root        string
	Regions     []string // the first holds Source
	RegionPaths map[string]string
	Source      string
	Work        string // directory for files to import, on Root's filesystem
	// copy mode: one copy to Dst with Token, started at Start (unix ns).
	Dst   string
	Token string
	Start int64
}

// runChild is the body of a child process; its exit code reports errors.
func runChild(mode string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childSpecEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child spec:", err)
		return 2
	}
	b, err := New(config.LocalBackend{RegionPaths: spec.RegionPaths}, spec.Root, spec.Regions)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	switch mode {
	case "crashloop":
		fmt.Println("ready")
		err = crashLoop(ctx, b, spec)
	case "copy":
		time.Sleep(time.Until(time.Unix(0, spec.Start)))
		var img cloud.Image
		img, err = b.CopyImage(ctx, copyInput(spec.Regions[0], spec.Source, spec.Dst, spec.Token))
		if err == nil {
			fmt.Println(img.ID)
		}
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func copyInput(srcRegion, srcID, dst, token string) cloud.CopyInput {
	return cloud.CopyInput{
		SourceRegion: srcRegion, SourceID: srcID, Region: dst, Name: "copy-" + token,
		Token: token, Tags: map[string]string{tokenTag: token, cloud.TagManaged: "true"},
	}
}

// crashLoop copies, imports and deletes until it is killed.
func crashLoop(ctx context.Context, b *Backend, spec childSpec) error {
	src := spec.Regions[0]
	for i := 0; ; i++ {
		k := i % 3
		for _, dst := range spec.Regions {
			tok := fmt.Sprintf("copy-%s-%d", dst, k)
			if _, err := b.CopyImage(ctx, copyInput(src, spec.Source, dst, tok)); err != nil {
				return err
			}
		}
		tok := fmt.Sprintf("import-%d", k)
		if _, err := b.ImportImage(ctx, importInput(spec, tok, fmt.Sprintf("%d-%d", os.Getpid(), i))); err != nil {
			return err
		}
		if i%2 == 1 {
			// Delete this round's images so the next rounds make them again.
			for _, region := range spec.Regions {
				imgs, err := b.ListImages(ctx, region, cloud.Filter{Tags: map[string]string{tokenTag: ""}})
				if err != nil {
					return err
				}
				for _, img := range imgs {
					if strings.HasSuffix(img.Tags[tokenTag], fmt.Sprintf("-%d", k)) {
						if err := b.DeleteImage(ctx, region, img.ID); err != nil {
							return err
						}
					}
				}
			}
		}
	}
}

// importInput writes a fresh 2 MiB disk and returns an import of it.
func importInput(spec childSpec, token, name string) ImportInput {
	disk := filepath.Join(spec.Work, "disk-"+name)
	data := make([]byte, 2<<20)
	rand.Read(data)
	if err := os.WriteFile(disk, data, 0o644); err != nil {
		panic(err) // only in a child process
	}
	return ImportInput{
		Region: spec.Regions[0], Name: "import-" + token, Arch: "x86_64", Token: token, Disk: disk,
		Tags: map[string]string{tokenTag: token, cloud.TagManaged: "true"},
	}
}

// startChild starts the test binary as a child in mode with spec. Its
// stdout is returned as a line reader.
func startChild(t *testing.T, mode string, spec childSpec) (*exec.Cmd, *bufio.Reader, *strings.Builder) {
	t.Helper()
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childSpecEnv+"="+string(data))
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	return cmd, bufio.NewReader(out), stderr
}

// readLine reads one line from a child with a deadline.
func readLine(t *testing.T, r *bufio.Reader, stderr *strings.Builder, d time.Duration) string {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	c := make(chan result, 1)
	go func() {
		l, err := r.ReadString('\n')
		c <- result{strings.TrimSpace(l), err}
	}()
	select {
	case res := <-c:
		if res.err != nil && res.err != io.EOF {
			t.Fatalf("reading child output: %v (stderr: %s)", res.err, stderr)
		}
		return res.line
	case <-time.After(d):
		t.Fatalf("no output from child within %v (stderr: %s)", d, stderr)
		return ""
	}
}
