package scale

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// peerArg, as a benchmark binary's first argument, makes it run one peer
// scan and exit, so that the peer is timed as a process of its own, start
// to exit, like kiln.
const peerArg = "-scale-peer"

// MaybePeer runs a peer scan and exits when the binary was started for one
// (see PeerVariant); otherwise it returns. Call it first in main.
func MaybePeer() {
	if len(os.Args) < 4 || os.Args[1] != peerArg {
		return
	}
	mode, target, regions := os.Args[2], os.Args[3], strings.Split(os.Args[4], ",")
	ctx := context.Background()
	var n int
	var err error
	switch mode {
	case "local":
		n, err = MinimalLocal(ctx, target, regions)
	case "aws-inventory":
		n, err = MinimalAWSInventory(ctx, target, regions)
	case "aws-images":
		n, err = MinimalAWSImages(ctx, target, regions)
	default:
		err = fmt.Errorf("unknown peer %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(n)
	os.Exit(0)
}

// PeerVariant measures a peer scan (mode "local", "aws-inventory" or
// "aws-images" against target: the store root or the endpoint) in a new
// process of this binary, checks that it found want resources, and takes
// its call count from calls.
func PeerVariant(mode, target string, regions []string, want int, calls func() (int, string)) (Variant, error) {
	self, err := os.Executable()
	if err != nil {
		return Variant{}, err
	}
	return Variant{Name: "minimal", Run: func(ctx context.Context) (Sample, error) {
		calls()
		start := time.Now()
		res, err := Kiln(ctx, self, Env(), peerArg, mode, target, strings.Join(regions, ","))
		wall := time.Since(start)
		if err != nil {
			return Sample{}, err
		}
		if res.Code != 0 {
			return Sample{}, fmt.Errorf("peer %s: exit %d: %s", mode, res.Code, res.Stderr)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
		if err != nil || n != want {
			return Sample{}, fmt.Errorf("peer %s found %q, want %d", mode, res.Stdout, want)
		}
		c, note := calls()
		return Sample{Wall: wall, CPU: res.CPU, Calls: c, Note: note}, nil
	}}, nil
}
