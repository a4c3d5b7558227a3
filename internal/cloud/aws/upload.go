package aws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/ebsupload"
	"github.com/kiln-images/kiln/internal/config"
)

// A build with method upload makes no instance: the disk is built on this
// machine (by the DiskBuilder, the local backend's builder) or given
// (build.disk), then written with the EBS direct APIs straight into a
// snapshot in every target region at once; the candidate is registered in
// the build region from its snapshot. CopyImage of such a candidate to
// another region registers the snapshot already there instead of copying
// across regions.
//
// Crash safety: every snapshot is tagged at creation (StartSnapshot takes
// tags) with the run's tags and a token per region, so cleanup finds it
// and a rerun finds it by token: a completed snapshot of the same disk
// (kiln:upload holds the disk's checksum) is used as it is; an unfinished
// one, or one of another disk, is deleted and written again. The disk a
// local build made stays in the work directory until the candidate is
// registered, so a rerun uploads the same bytes instead of building again.

// tagUpload is on the snapshots and the candidate of a build with method
// upload: the LINEAR checksum of the disk's blocks, which names the disk.
const tagUpload = "kiln:upload"

// DiskBuilder builds a raw disk on this machine from a recipe.
type DiskBuilder interface {
	// BuildDisk builds the disk in in.WorkDir (creating it) and returns
	// the raw disk's path.
	BuildDisk(ctx context.Context, in DiskInput) (string, error)
	// RemoveWork removes a work directory, stopping what still works in
	// it (the tools of a killed kiln) first.
	RemoveWork(ctx context.Context, dir string) error
}

// DiskInput is a disk to build.
type DiskInput struct {
	Arch     string
	UseCase  *config.UseCase
	Dir      string // resolves the recipe's relative paths
	Vars     []cloud.Var
	WorkDir  string
	Progress cloud.Progress
}

// Root device of uploaded images.
const (
	uploadRootDevice = "/dev/xvda"
	uploadVolumeType = ec2types.VolumeTypeGp3
)

// uploadToken is the token of a build's snapshot in region.
func uploadToken(buildToken, region string) string { return cloud.Token(buildToken, "upload", region) }

// uploadWork is the work directory of a build's disk.
func uploadWork(stateDir, token string) string {
	return filepath.Join(stateDir, "work", "upload-"+token)
}

// diskDone marks, in a work directory, a disk that was built completely.
const diskDone = "disk.done"

// buildUpload is BuildDeferCleanup for method upload. The returned
// function removes the work directory of a local build.
func (b *Backend) buildUpload(ctx context.Context, in cloud.BuildInput) (cloud.Image, func(context.Context) error, error) {
	imageTags := withTags(map[string]string{cloud.TagPhase: cloud.PhaseBuild}, in.Tags,
		map[string]string{cloud.TagToken: in.Token, cloud.TagArch: in.Arch})
	if err := checkTags(withTags(imageTags, map[string]string{tagUpload: strings.Repeat("x", 44)})); err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	if err := b.CheckAccount(ctx); err != nil {
		return cloud.Image{}, nil, err
	}
	regions := uploadRegions(in)
	clients := map[string]*regional{}
	for _, r := range regions {
		c, err := b.clients.region(r)
		if err != nil {
			return cloud.Image{}, nil, err
		}
		clients[r] = c
	}
	c := clients[in.Region]
	u := in.UseCase

	// What an earlier attempt left: the candidate, and each region's
	// snapshot. Asked at once.
	var (
		earlier     ec2types.Image
		haveEarlier bool
		snaps       = make([][]ec2types.Snapshot, len(regions))
	)
	done := step(in.Progress, "look for an earlier upload")
	fns := []func() error{func() error {
		if in.Fresh {
			return nil // no earlier attempt: nothing to look for
		}
		var err error
		earlier, haveEarlier, err = b.imageByToken(ctx, in.Region, in.Token)
		return err
	}}
	for i, r := range regions {
		if in.Fresh {
			break
		}
		fns = append(fns, func() error {
			var err error
			snaps[i], err = snapshotsByToken(ctx, clients[r], uploadToken(in.Token, r))
			return err
		})
	}
	err := together(fns...)
	done(err)
	if err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	work := ""
	if u.Build.Disk == "" && b.opts.stateDir != "" {
		work = uploadWork(b.opts.stateDir, in.Token)
	}
	removeWork := func(ctx context.Context) error {
		if work == "" || b.opts.disks == nil {
			return nil
		}
		if err := b.opts.disks.RemoveWork(ctx, work); err != nil {
			return fmt.Errorf("build %s: image is ready but its work directory %s remains (kiln cleanup removes it): %w", in.Name, work, err)
		}
		return nil
	}
	if haveEarlier {
		b.log.Info("build image exists", "region", in.Region, "image", aws.ToString(earlier.ImageId))
		img, err := b.finishUpload(ctx, in, aws.ToString(earlier.ImageId), withTags(imageTags, map[string]string{tagUpload: tagMap(earlier.Tags)[tagUpload]}))
		return img, removeWork, err
	}

	disk, err := b.uploadDisk(ctx, in, work)
	if err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	done = step(in.Progress, "scan disk")
	d, err := ebsupload.Scan(disk)
	done(err)
	if err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: scan %s: %w", in.Name, disk, err)
	}
	sum := d.Checksum()
	b.log.Info("disk scanned", "disk", disk, "size", d.Size, "data_blocks", len(d.Blocks), "bytes_per_region", d.DataBytes(), "regions", len(regions))
	imageTags[tagUpload] = sum

	snapIDs, err := b.uploadSnapshots(ctx, in, clients, regions, snaps, d)
	if err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	b.mu.Lock()
	for r, id := range snapIDs {
		b.uploads[uploadToken(in.Token, r)] = id
	}
	b.mu.Unlock()

	done = step(in.Progress, "register image")
	id, err := b.registerImage(ctx, c, in.Name, "kiln build of use case "+u.Name, in.Arch, snapIDs[in.Region], imageTags)
	done(err)
	if err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	img, err := b.finishUpload(ctx, in, id, imageTags)
	return img, removeWork, err
}

// uploadRegions are the build region, then the other target regions.
func uploadRegions(in cloud.BuildInput) []string {
	out := []string{in.Region}
	for _, r := range in.Regions {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// uploadDisk returns the disk to upload: build.disk, a disk an earlier
// attempt built completely in work, or a new one.
func (b *Backend) uploadDisk(ctx context.Context, in cloud.BuildInput, work string) (string, error) {
	u := in.UseCase
	if u.Build.Disk != "" {
		return resolve(in.Dir, u.Build.Disk), nil
	}
	if b.opts.disks == nil {
		return "", cloud.Mark(errors.New("build method upload needs the local image builder, which this kiln was not given"), cloud.ErrInvalid)
	}
	if work == "" {
		return "", cloud.Mark(errors.New("build method upload needs a state directory for its work"), cloud.ErrInvalid)
	}
	if data, err := os.ReadFile(filepath.Join(work, diskDone)); err == nil {
		if p := strings.TrimSpace(string(data)); p != "" {
			if _, err := os.Stat(p); err == nil {
				b.log.Info("disk built by an earlier attempt", "disk", p)
				return p, nil
			}
		}
	}
	// A crashed attempt may have left a half-made work directory.
	if err := b.opts.disks.RemoveWork(ctx, work); err != nil {
		return "", fmt.Errorf("clear %s: %w", work, err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", err
	}
	if err := writeWorkTags(work, in); err != nil {
		return "", err
	}
	done := step(in.Progress, "build disk")
	disk, err := b.opts.disks.BuildDisk(ctx, DiskInput{
		Arch: in.Arch, UseCase: u, Dir: in.Dir, Vars: in.StepVars(), WorkDir: work, Progress: in.Progress,
	})
	done(err)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(work, diskDone), []byte(disk+"\n"), 0o644); err != nil {
		return "", err
	}
	return disk, nil
}

// uploadSnapshots makes sure every region holds a completed snapshot of d
// and returns them by region: completed ones of the same disk from an
// earlier attempt are kept, others deleted and started afresh, and all new
// ones written at once.
func (b *Backend) uploadSnapshots(ctx context.Context, in cloud.BuildInput, clients map[string]*regional, regions []string, found [][]ec2types.Snapshot, d ebsupload.Disk) (map[string]string, error) {
	sum := d.Checksum()
	ids := map[string]string{}
	var (
		starts []string
		drop   [][2]string // region, snapshot
	)
	for i, r := range regions {
		for _, s := range found[i] {
			id := aws.ToString(s.SnapshotId)
			if ids[r] == "" && s.State == ec2types.SnapshotStateCompleted && tagMap(s.Tags)[tagUpload] == sum {
				ids[r] = id
				continue
			}
			drop = append(drop, [2]string{r, id})
		}
		if ids[r] == "" {
			starts = append(starts, r)
		}
	}
	if len(starts) == 0 && len(drop) == 0 {
		return ids, nil
	}
	// A nonce per attempt: StartSnapshot's client token only makes a
	// retried request idempotent; reruns converge by the kiln:token tag.
	var nonce [8]byte
	rand.Read(nonce[:])
	attempt := hex.EncodeToString(nonce[:])
	targets := make([]ebsupload.Target, len(starts))
	done := step(in.Progress, fmt.Sprintf("start snapshots in %d regions", len(starts)))
	fns := make([]func() error, 0, len(drop)+len(starts))
	for _, rd := range drop {
		fns = append(fns, func() error {
			b.log.Info("deleting a snapshot an earlier attempt did not finish", "region", rd[0], "snapshot", rd[1])
			return b.deleteSnapshotRetry(ctx, clients[rd[0]], rd[1])
		})
	}
	for i, r := range starts {
		fns = append(fns, func() error {
			id, err := b.startSnapshot(ctx, clients[r], in, d, uploadToken(in.Token, r), attempt)
			targets[i] = ebsupload.Target{Region: r, SnapshotID: id, API: clients[r].ebs}
			return err
		})
	}
	err := together(fns...)
	done(err)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return ids, nil
	}
	// Each region's upload is a step of its own.
	ends := map[string]func(error){}
	for _, t := range targets {
		ends[t.Region] = step(in.Progress, "upload to "+t.Region)
	}
	start := time.Now()
	var halfway sync.Map
	results := ebsupload.Upload(ctx, d, targets, ebsupload.Options{
		Concurrency: b.cfg.UploadConcurrency,
		Progress: func(region string, done, total int) {
			b.log.Debug("upload", "region", region, "blocks", done, "of", total)
			// Halfway is a step boundary of its own: a crash there leaves
			// a snapshot with some blocks written.
			if done*2 >= total && done < total {
				if _, seen := halfway.LoadOrStore(region, true); !seen {
					step(in.Progress, "upload to "+region+": halfway")(nil)
				}
			}
		},
	})
	var errs []error
	var sent int64
	for _, r := range results {
		ends[r.Region](r.Err)
		sent += r.Bytes
		if r.Err != nil {
			errs = append(errs, r.Err)
			if ctx.Err() == nil {
				// Not worth resuming: a rerun starts this region afresh.
				if derr := b.deleteSnapshotRetry(context.WithoutCancel(ctx), clients[r.Region], r.SnapshotID); derr != nil {
					b.log.Warn("delete the snapshot of a failed upload (kiln cleanup removes it)", "region", r.Region, "snapshot", r.SnapshotID, "err", derr)
				}
			}
			continue
		}
		ids[r.Region] = r.SnapshotID
	}
	b.log.Info("uploaded", "regions", len(targets), "bytes", sent, "took", time.Since(start).Round(time.Millisecond))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	done = step(in.Progress, "wait for snapshots")
	err = together(mapRegions(targets, func(t ebsupload.Target) error {
		return b.waitSnapshot(ctx, clients[t.Region], t.SnapshotID)
	})...)
	done(err)
	return ids, err
}

func mapRegions(targets []ebsupload.Target, fn func(ebsupload.Target) error) []func() error {
	out := make([]func() error, len(targets))
	for i, t := range targets {
		out[i] = func() error { return fn(t) }
	}
	return out
}

// startSnapshot starts the region's snapshot, tagged at creation.
func (b *Backend) startSnapshot(ctx context.Context, c *regional, in cloud.BuildInput, d ebsupload.Disk, token, attempt string) (string, error) {
	tags := withTags(in.Tags, map[string]string{
		cloud.TagPhase: cloud.PhaseBuild, cloud.TagToken: token, cloud.TagArch: in.Arch, tagUpload: d.Checksum(),
	})
	timeout := int32(min(max(b.buildTimeout()/time.Minute, 10), 4320))
	req := &ebs.StartSnapshotInput{
		VolumeSize:  aws.Int64(d.VolumeSize()),
		Description: aws.String("kiln upload of " + in.Name),
		ClientToken: aws.String(cloud.Token(token, attempt)),
		Tags:        ebsTags(tags),
		Timeout:     aws.Int32(timeout),
	}
	if key := b.cfg.KMSKeys[c.region]; key != "" {
		req.Encrypted, req.KmsKeyArn = aws.Bool(true), aws.String(key)
	}
	out, err := c.ebs.StartSnapshot(ctx, req)
	if err != nil {
		return "", fmt.Errorf("start snapshot in %s: %w", c.region, classify(err))
	}
	id := aws.ToString(out.SnapshotId)
	b.log.Info("snapshot started", "region", c.region, "snapshot", id, "size_gib", d.VolumeSize())
	return id, nil
}

func ebsTags(m map[string]string) []ebstypes.Tag {
	out := make([]ebstypes.Tag, 0, len(m))
	for _, t := range ec2Tags(m) {
		out = append(out, ebstypes.Tag{Key: t.Key, Value: t.Value})
	}
	return out
}

// snapshotsByToken finds the snapshots of the account in c's region
// tagged with token, in any state.
func snapshotsByToken(ctx context.Context, c *regional, token string) ([]ec2types.Snapshot, error) {
	var out []ec2types.Snapshot
	p := ec2.NewDescribeSnapshotsPaginator(c.ec2, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []ec2types.Filter{filter("tag:"+cloud.TagToken, token)},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("look for snapshots in %s: %w", c.region, classify(err))
		}
		out = append(out, page.Snapshots...)
	}
	return out, nil
}

// waitSnapshot waits until a snapshot is completed: after
// CompleteSnapshot, EBS still copies it into place (pending). One read
// that shows it completed is enough: RegisterImage refuses a snapshot that
// is not, and that refusal is retried.
func (b *Backend) waitSnapshot(ctx context.Context, c *regional, id string) error {
	return b.poll(ctx, fmt.Sprintf("snapshot %s in %s to complete", id, c.region), b.copyTimeout(), func(ctx context.Context) (bool, error) {
		out, err := c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		if err != nil {
			return false, fmt.Errorf("describe snapshot %s in %s: %w", id, c.region, classify(err))
		}
		if len(out.Snapshots) == 0 {
			return false, cloud.Mark(fmt.Errorf("snapshot %s not visible yet", id), cloud.ErrNotYet)
		}
		switch s := out.Snapshots[0]; s.State {
		case ec2types.SnapshotStateCompleted:
			return true, nil
		case ec2types.SnapshotStateError:
			return false, fmt.Errorf("snapshot %s in %s failed: %s", id, c.region, aws.ToString(s.StateMessage))
		}
		return false, nil
	})
}

// registerImage registers an image from an uploaded snapshot, tagged at
// creation: UEFI boot, ENA, the architecture. If the name is taken by an
// image with the same token, an earlier attempt made it and it is used.
func (b *Backend) registerImage(ctx context.Context, c *regional, name, desc, arch, snapshot string, tags map[string]string) (string, error) {
	var id string
	err := cloud.Retry(ctx, 6, b.opts.pollInterval, b.opts.pollMax, func(ctx context.Context) error {
		out, err := c.ec2.RegisterImage(ctx, &ec2.RegisterImageInput{
			Name:               aws.String(name),
			Description:        aws.String(desc),
			Architecture:       ec2types.ArchitectureValues(arch),
			BootMode:           ec2types.BootModeValuesUefi,
			EnaSupport:         aws.Bool(true),
			ImdsSupport:        ec2types.ImdsSupportValuesV20,
			RootDeviceName:     aws.String(uploadRootDevice),
			VirtualizationType: aws.String("hvm"),
			BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
				DeviceName: aws.String(uploadRootDevice),
				Ebs: &ec2types.EbsBlockDevice{
					SnapshotId:          aws.String(snapshot),
					VolumeType:          uploadVolumeType,
					DeleteOnTermination: aws.Bool(true),
				},
			}},
			TagSpecifications: tagSpecs(tags, ec2types.ResourceTypeImage),
		})
		switch {
		case isCode(err, "InvalidAMIName.Duplicate"):
			im, ok, ferr := b.imageByName(ctx, c.region, name)
			if ferr != nil {
				return fmt.Errorf("image name %q is taken; look it up: %w", name, ferr)
			}
			if ok && tagMap(im.Tags)[cloud.TagToken] == tags[cloud.TagToken] {
				id = aws.ToString(im.ImageId)
				return nil
			}
			return cloud.Mark(fmt.Errorf("image name %q is already used in %s by %s, which another run made", name, c.region, aws.ToString(im.ImageId)), cloud.ErrInvalid)
		case isCode(err, "IncorrectState"), isCode(err, "InvalidSnapshot.NotFound"):
			// The snapshot is not visible or completed to EC2 yet.
			return cloud.Mark(fmt.Errorf("register image %s in %s: %w", name, c.region, classify(err)), cloud.ErrNotYet)
		case err != nil:
			return fmt.Errorf("register image %s from %s in %s: %w", name, snapshot, c.region, classify(err))
		}
		id = aws.ToString(out.ImageId)
		b.madeHere(c.region, id)
		return nil
	})
	if err != nil {
		return "", err
	}
	b.log.Info("image registered", "region", c.region, "image", id, "snapshot", snapshot)
	return id, nil
}

// finishUpload waits for the candidate and makes sure it carries its tags.
func (b *Backend) finishUpload(ctx context.Context, in cloud.BuildInput, id string, tags map[string]string) (cloud.Image, error) {
	done := step(in.Progress, "wait for image "+id)
	raw, err := b.waitAvailable(ctx, in.Region, id)
	done(err)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}
	img, err := b.ensureImageTags(ctx, in.Region, raw, tags)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}
	return img, nil
}

// copyUploaded is CopyImage of an uploaded candidate to another region:
// the region holds a completed snapshot of the same disk, which is
// registered under the copy's name and tags. It reports false when there
// is no such snapshot (a region added since the build), for CopyImage to
// copy after all.
func (b *Backend) copyUploaded(ctx context.Context, c *regional, in cloud.CopyInput, name string, tags map[string]string) (ec2types.Image, bool, error) {
	sum, buildToken := in.SourceTags[tagUpload], in.SourceTags[cloud.TagToken]
	token := uploadToken(buildToken, in.Region)
	// The build in this process left it here; else it is looked up.
	b.mu.Lock()
	snap := b.uploads[token]
	b.mu.Unlock()
	if snap == "" {
		snaps, err := snapshotsByToken(ctx, c, token)
		if err != nil {
			return ec2types.Image{}, false, err
		}
		for _, s := range snaps {
			if s.State == ec2types.SnapshotStateCompleted && tagMap(s.Tags)[tagUpload] == sum {
				snap = aws.ToString(s.SnapshotId)
			}
		}
	}
	if snap == "" {
		b.log.Warn("no uploaded snapshot in the region: copying the image instead", "region", in.Region, "source", in.SourceID)
		return ec2types.Image{}, false, nil
	}
	arch := in.SourceTags[cloud.TagArch]
	if arch == "" {
		arch = "x86_64"
	}
	id, err := b.registerImage(ctx, c, name, in.Description, arch, snap, withTags(tags, map[string]string{tagUpload: sum}))
	if err != nil {
		return ec2types.Image{}, false, err
	}
	im, err := b.describeFresh(ctx, in.Region, id)
	return im, true, err
}
