package aws

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Build makes a candidate image in in.Region: it starts a temporary
// instance from the recipe's base image (with its own key pair and
// security group, or all three as one CloudFormation stack when
// backend.aws.use_stack is set), lets user data run the provisioning steps
// until the guest powers off, makes an image of the stopped instance and
// removes the temporary resources.
//
// Every resource is tagged at creation with in.Tags (phase build, and the
// token). A rerun with the same token converges: it returns the image an
// earlier attempt made (and removes what that attempt left), or picks up
// the instance or stack it started.
func (b *Backend) Build(ctx context.Context, in cloud.BuildInput) (cloud.Image, error) {
	if err := checkBuildInput(in); err != nil {
		return cloud.Image{}, err
	}
	imageTags := withTags(map[string]string{cloud.TagPhase: cloud.PhaseBuild}, in.Tags,
		map[string]string{cloud.TagToken: in.Token, cloud.TagArch: in.Arch})
	tempTags := withTags(in.Tags, map[string]string{cloud.TagPhase: cloud.PhaseBuild, cloud.TagToken: in.Token})
	if err := checkTags(imageTags); err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}
	if err := b.CheckAccount(ctx); err != nil {
		return cloud.Image{}, err
	}
	c, err := b.clients.region(in.Region)
	if err != nil {
		return cloud.Image{}, err
	}

	// A finished earlier attempt: return its image, tidy what it left.
	if im, ok, err := b.imageByToken(ctx, in.Region, in.Token); err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: look for an earlier image: %w", in.Name, err)
	} else if ok {
		b.log.Info("build image exists", "region", in.Region, "image", aws.ToString(im.ImageId))
		return b.finishBuild(ctx, c, in, aws.ToString(im.ImageId), imageTags)
	}

	done := step(in.Progress, "resolve base image")
	base, err := b.resolveBase(ctx, c, in.UseCase.Name, in.UseCase.Base, in.Arch)
	done(err)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}
	script, err := provisionScript(in.Dir, in.UseCase.Provision)
	if err != nil {
		return cloud.Image{}, cloud.Mark(fmt.Errorf("build %s: use_cases.%s.%w", in.Name, in.UseCase.Name, err), cloud.ErrInvalid)
	}
	ud, err := encodeUserData(script)
	if err != nil {
		return cloud.Image{}, cloud.Mark(fmt.Errorf("build %s: use_cases.%s.provision: %w", in.Name, in.UseCase.Name, err), cloud.ErrInvalid)
	}
	spec := instanceSpec{
		ImageID:      aws.ToString(base.ImageId),
		InstanceType: b.instanceType(in.Arch),
		UserData:     ud,
		SubnetID:     b.cfg.SubnetID,
		Tags:         tempTags,
		Token:        in.Token,
		Devices:      rootDevice(base, int64(in.UseCase.DiskSize)),
	}

	done = step(in.Progress, "start build instance")
	id, err := b.startBuildInstance(ctx, c, spec)
	done(err)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}

	done = step(in.Progress, "provision")
	err = b.provision(ctx, c, in, id)
	done(err)
	if err != nil {
		// A failed provisioning must not be reused by a rerun: remove it.
		// A cancelled one is left for the rerun to pick up.
		if ctx.Err() == nil {
			if cerr := b.cleanupAfterFailure(ctx, c, in.Token); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}

	done = step(in.Progress, "create image")
	imageID, err := b.createImage(ctx, c, id, in, imageTags)
	done(err)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}
	return b.finishBuild(ctx, c, in, imageID, imageTags)
}

func checkBuildInput(in cloud.BuildInput) error {
	var problem string
	switch {
	case in.UseCase == nil:
		problem = "no use case"
	case in.Name == "":
		problem = "empty image name"
	case len(in.Name) < 3 || len(in.Name) > 128:
		problem = fmt.Sprintf("image name %q: EC2 wants 3 to 128 characters", in.Name)
	case in.Token == "":
		problem = "empty token"
	case len(in.Token) > 64:
		problem = fmt.Sprintf("token %q is longer than 64 characters", in.Token)
	case in.Arch != "x86_64" && in.Arch != "arm64":
		problem = fmt.Sprintf("architecture %q: want x86_64 or arm64", in.Arch)
	default:
		return nil
	}
	return cloud.Mark(fmt.Errorf("build: %s", problem), cloud.ErrInvalid)
}

// startBuildInstance makes (or finds) the temporary resources and returns
// the build instance.
func (b *Backend) startBuildInstance(ctx context.Context, c *regional, spec instanceSpec) (string, error) {
	name := tempName(spec.Token)
	vpc, err := b.vpcFor(ctx, c)
	if err != nil {
		return "", err
	}
	if b.cfg.UseStack {
		tmpl, err := stackTemplate(spec, name, vpc)
		if err != nil {
			return "", err
		}
		return b.ensureStack(ctx, c, name, tmpl, spec.Tags, spec.Token)
	}
	if inst, ok, err := instanceByToken(ctx, c, spec.Token); err != nil {
		return "", err
	} else if ok {
		b.log.Info("build instance exists", "region", c.region, "instance", aws.ToString(inst.InstanceId))
		return aws.ToString(inst.InstanceId), nil
	}
	if err := ensureKeyPair(ctx, c, name, spec.Tags); err != nil {
		return "", err
	}
	gid, err := ensureSecurityGroup(ctx, c, name, vpc, spec.Tags)
	if err != nil {
		return "", err
	}
	spec.KeyName, spec.GroupID = name, gid
	return b.runInstance(ctx, c, spec)
}

// provision waits until the build instance has stopped (the generated
// script powers it off when the steps are done) and checks the console
// for the script's FAIL marker. The console is kept in the state
// directory. An instance that stops without a marker is taken as done:
// console output is best effort on EC2 and may lag or be empty.
func (b *Backend) provision(ctx context.Context, c *regional, in cloud.BuildInput, id string) error {
	what := fmt.Sprintf("build instance %s in %s to stop (the provisioning script powers it off when done)", id, c.region)
	if _, err := b.waitInstance(ctx, c, id, ec2types.InstanceStateNameStopped, b.buildTimeout(), what); err != nil {
		b.keepConsole(ctx, c, in, id)
		return err
	}
	text := b.keepConsole(ctx, c, in, id)
	if mk := findMarker(text, buildMarker); mk.found && !mk.passed {
		return fmt.Errorf("provisioning failed on %s in %s: %s", id, c.region, mk.detail)
	}
	return nil
}

// keepConsole saves the instance's console text under the state directory
// and returns it; failing to read it only logs.
func (b *Backend) keepConsole(ctx context.Context, c *regional, in cloud.BuildInput, id string) string {
	text, err := consoleOutput(ctx, c, id)
	if err != nil {
		b.log.Warn("could not read the build console", "instance", id, "err", err)
		return ""
	}
	if in.StateDir != "" {
		path := filepath.Join(in.StateDir, "logs", "aws-build-"+in.Token+".log")
		if err := writeLog(path, text); err != nil {
			b.log.Warn("could not keep the build console", "path", path, "err", err)
		}
	}
	return text
}

// createImage makes the image of the stopped build instance, tagged (image
// and snapshots) at creation. If the name is taken by an image with the
// same token, an earlier attempt made it and it is used.
func (b *Backend) createImage(ctx context.Context, c *regional, instanceID string, in cloud.BuildInput, tags map[string]string) (string, error) {
	desc := "kiln build of use case " + in.UseCase.Name
	out, err := c.ec2.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId:        aws.String(instanceID),
		Name:              aws.String(in.Name),
		Description:       aws.String(desc),
		TagSpecifications: tagSpecs(tags, ec2types.ResourceTypeImage, ec2types.ResourceTypeSnapshot),
	})
	if isCode(err, "InvalidAMIName.Duplicate") {
		im, ok, ferr := b.imageByName(ctx, c.region, in.Name)
		if ferr != nil {
			return "", fmt.Errorf("image name %q is taken; look it up: %w", in.Name, ferr)
		}
		if ok && tagMap(im.Tags)[cloud.TagToken] == in.Token {
			return aws.ToString(im.ImageId), nil
		}
		return "", cloud.Mark(fmt.Errorf("image name %q is already used in %s by %s, which another run made", in.Name, c.region, aws.ToString(im.ImageId)), cloud.ErrInvalid)
	}
	if err != nil {
		return "", fmt.Errorf("create image of %s in %s: %w", instanceID, c.region, classify(err))
	}
	id := aws.ToString(out.ImageId)
	b.log.Info("image created", "region", c.region, "image", id, "instance", instanceID)
	return id, nil
}

// finishBuild waits for the image, makes sure its snapshots carry the
// tags, and removes the temporary resources.
func (b *Backend) finishBuild(ctx context.Context, c *regional, in cloud.BuildInput, id string, tags map[string]string) (cloud.Image, error) {
	done := step(in.Progress, "wait for image "+id)
	img, err := b.WaitAvailable(ctx, c.region, id)
	done(err)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}
	raw, err := b.describeImage(ctx, c.region, id)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}
	if img, err = b.ensureImageTags(ctx, c.region, raw, tags); err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: %w", in.Name, err)
	}
	done = step(in.Progress, "remove build resources")
	err = b.removeBuildResources(ctx, c, in.Token)
	done(err)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("build %s: image %s is ready but temporary resources remain (kiln cleanup removes them): %w", in.Name, id, err)
	}
	return img, nil
}

// cleanupAfterFailure removes a failed build's temporary resources with a
// context of its own, so a deadline that ended the build does not also
// stop the cleanup.
func (b *Backend) cleanupAfterFailure(ctx context.Context, c *regional, token string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Minute)
	defer cancel()
	if err := b.removeBuildResources(cctx, c, token); err != nil {
		return fmt.Errorf("remove build resources after the failure (kiln cleanup removes them): %w", err)
	}
	return nil
}
