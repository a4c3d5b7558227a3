package qemuboot

import (
	"context"
	"testing"
	"time"
)

func TestScratch(t *testing.T) {
	res, err := Run(context.Background(), Spec{
		Disk: "/tmp/proto/disk.raw", Tests: []string{"/tmp/qtests/hang.sh"}, TestTimeout: 5 * time.Second,
		WorkDir: t.TempDir(), LogPath: "/tmp/qtests/console.log", Timeout: 5 * time.Minute, Accel: "tcg",
	})
	t.Logf("%+v %v", res, err)
}
