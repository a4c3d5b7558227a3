package debimage

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// gptPartition is one GPT entry as sfdisk --json reports it; offsets and
// sizes in bytes.
type gptPartition struct {
	start, size int64
	typ, uuid   string // upper-case GUIDs
	name        string
}

// partitions reads a disk image's GPT with sfdisk.
func partitions(ctx context.Context, disk string) ([]gptPartition, error) {
	out, err := run(ctx, discard, command{name: "sfdisk", args: []string{"--json", disk}, outOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read partition table of %s: %w", disk, err)
	}
	var t struct {
		PartitionTable struct {
			Label      string `json:"label"`
			SectorSize int64  `json:"sectorsize"`
			Partitions []struct {
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
				Type  string `json:"type"`
				UUID  string `json:"uuid"`
				Name  string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &t); err != nil {
		return nil, fmt.Errorf("read partition table of %s: sfdisk output: %w", disk, err)
	}
	pt := t.PartitionTable
	if pt.Label != "gpt" {
		return nil, fmt.Errorf("%s: partition table is %q, want gpt", disk, pt.Label)
	}
	if pt.SectorSize == 0 {
		pt.SectorSize = sectorSize
	}
	var parts []gptPartition
	for _, p := range pt.Partitions {
		parts = append(parts, gptPartition{
			start: p.Start * pt.SectorSize, size: p.Size * pt.SectorSize,
			typ: strings.ToUpper(p.Type), uuid: strings.ToUpper(p.UUID), name: p.Name,
		})
	}
	return parts, nil
}

// partition makes the sparse disk file and writes its GPT, and returns the
// ESP and root partitions as written.
func (b *builder) partition(ctx context.Context, disk string, l layout) (esp, root gptPartition, err error) {
	f, err := os.Create(disk)
	if err != nil {
		return esp, root, err
	}
	err = f.Truncate(l.size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return esp, root, fmt.Errorf("create %s: %w", disk, err)
	}
	_, err = run(ctx, b.log, command{
		name:  "sfdisk",
		args:  []string{"--quiet", "--no-reread", "--no-tell-kernel", disk},
		stdin: strings.NewReader(l.sfdiskScript()),
	})
	if err != nil {
		return esp, root, fmt.Errorf("partition %s: %w", disk, err)
	}
	parts, err := partitions(ctx, disk)
	if err != nil {
		return esp, root, err
	}
	if len(parts) != 2 || parts[0].typ != typeESP || parts[1].typ != typeLinux {
		return esp, root, fmt.Errorf("partition %s: sfdisk wrote %+v, want an ESP and a Linux partition", disk, parts)
	}
	return parts[0], parts[1], nil
}
