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
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/redact"
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
	img, cleanup, err := b.BuildDeferCleanup(ctx, in)
	if err != nil {
		return cloud.Image{}, err
	}
	if err := cleanup(ctx); err != nil {
		return cloud.Image{}, err
	}
	return img, nil
}

// BuildDeferCleanup is Build returning as soon as the image is available
// and tagged, with the removal of the temporary resources (terminate the
// instance, wait for it, delete key pair and group, or the stack) left to
// the returned function, so that a caller can overlap it with work that
// only needs the image. The caller must call it and wait for it. Until it
// has returned nil the resources exist; if the caller dies first, a rerun
// of Build with the same token or kiln cleanup removes them, as after any
// crash. On error there is nothing to call.
func (b *Backend) BuildDeferCleanup(ctx context.Context, in cloud.BuildInput) (cloud.Image, func(context.Context) error, error) {
	if err := checkBuildInput(in); err != nil {
		return cloud.Image{}, nil, err
	}
	if in.UseCase.Build.Method == config.BuildUpload {
		return b.buildUpload(ctx, in)
	}
	imageTags := withTags(map[string]string{cloud.TagPhase: cloud.PhaseBuild}, in.Tags,
		map[string]string{cloud.TagToken: in.Token, cloud.TagArch: in.Arch})
	tempTags := withTags(in.Tags, map[string]string{cloud.TagPhase: cloud.PhaseBuild, cloud.TagToken: in.Token})
	if err := checkTags(imageTags); err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	if err := b.checkLocation(ctx, in.Region); err != nil {
		return cloud.Image{}, nil, err
	}
	c, err := b.clients.region(in.Region)
	if err != nil {
		return cloud.Image{}, nil, err
	}
	bd, err := provisionBundle(in.Dir, in.StateDir, in.UseCase.Provision, in.StepVars())
	if err != nil {
		return cloud.Image{}, nil, cloud.Mark(fmt.Errorf("build %s: use_cases.%s.%w", in.Name, in.UseCase.Name, err), cloud.ErrInvalid)
	}
	var ud []byte
	if b.cfg.Bucket == "" {
		// Inline: too big or holding a secret is an error before anything
		// is made.
		if _, err := b.stage(ctx, c, bd, in.Tags, in.Token); err != nil {
			return cloud.Image{}, nil, fmt.Errorf("build %s: use_cases.%s.provision: %w", in.Name, in.UseCase.Name, err)
		}
		if ud, err = bootstrap(bd, "", buildMarker); err != nil {
			return cloud.Image{}, nil, cloud.Mark(fmt.Errorf("build %s: use_cases.%s.provision: %w", in.Name, in.UseCase.Name, err), cloud.ErrInvalid)
		}
	}

	// What an earlier attempt left, the base image and the network are
	// independent questions: they are asked at once, with the staging of
	// the bundle, and the answers that turn out not to be needed (all but
	// the first when the image exists) cost nothing more.
	var (
		earlier          ec2types.Image
		haveEarlier      bool
		base             ec2types.Image
		temp             tempState
		st               staged
		baseErr, tempErr error
		stageErr         error
	)
	done := step(in.Progress, "resolve base image")
	err = together(func() error {
		if ud != nil {
			return nil
		}
		st, stageErr = b.stage(ctx, c, bd, in.Tags, in.Token)
		return nil
	}, func() error {
		if in.Fresh {
			return nil // no earlier attempt can have made one
		}
		var err error
		if earlier, haveEarlier, err = b.imageByToken(ctx, in.Region, in.Token); err != nil {
			return fmt.Errorf("build %s: look for an earlier image: %w", in.Name, err)
		}
		return nil
	}, func() error {
		base, baseErr = b.resolveBase(ctx, c, in.UseCase.Name, in.UseCase.Base, in.Arch)
		return nil
	}, func() error {
		temp, tempErr = b.lookTemp(ctx, c, in.Token, in.Fresh)
		return nil
	})
	if err == nil && !haveEarlier {
		err = baseErr
		if err != nil {
			err = fmt.Errorf("build %s: %w", in.Name, err)
		}
	}
	done(err)
	if err != nil {
		return cloud.Image{}, nil, err
	}
	// A finished earlier attempt: return its image, tidy what it left.
	if haveEarlier {
		b.log.Info("build image exists", "region", in.Region, "image", aws.ToString(earlier.ImageId))
		return b.finishBuild(ctx, c, in, aws.ToString(earlier.ImageId), imageTags, tempMade{})
	}
	if err := errors.Join(tempErr, stageErr); err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	if ud == nil {
		if ud, err = bootstrap(bd, st.url, buildMarker); err != nil {
			return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
		}
	}
	spec := instanceSpec{
		ImageID:      aws.ToString(base.ImageId),
		InstanceType: b.instanceType(in.Arch),
		UserData:     encodeUserData(ud),
		SubnetID:     b.cfg.SubnetID,
		Tags:         tempTags,
		Token:        in.Token,
		Devices:      rootDevice(base, int64(in.UseCase.DiskSize)),
	}

	done = step(in.Progress, "start build instance")
	made, err := b.startWith(ctx, c, spec, temp)
	id := made.instance
	done(err)
	if err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}

	done = step(in.Progress, "provision")
	err = b.provision(ctx, c, in, id)
	done(err)
	if err != nil {
		// A failed provisioning must not be reused by a rerun: remove it.
		// A cancelled one is left for the rerun to pick up.
		if ctx.Err() == nil {
			if cerr := b.cleanupAfterFailure(ctx, c, in); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}

	done = step(in.Progress, "create image")
	imageID, err := b.createImage(ctx, c, id, in, imageTags)
	done(err)
	if err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	return b.finishBuild(ctx, c, in, imageID, imageTags, made)
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
	temp, err := b.lookTemp(ctx, c, spec.Token, false)
	if err != nil {
		return "", err
	}
	made, err := b.startWith(ctx, c, spec, temp)
	return made.instance, err
}

// tempMade names the temporary resources a build started with, so that
// removing them need not look them up again. Empty fields are unknown.
type tempMade struct {
	instance string
	group    string
	object   string // the staged bundle's key, "" when none was staged
}

// stagedObject is the key of the bundle a build or test with token
// stages, or "" without a bucket.
func (b *Backend) stagedObject(tags map[string]string, token string) string {
	if b.cfg.Bucket == "" {
		return ""
	}
	return stagingKey(tags, token)
}

// startWith makes what temp says is missing of the temporary resources
// (key pair and group at once, then the instance) and returns the build
// instance and group.
func (b *Backend) startWith(ctx context.Context, c *regional, spec instanceSpec, temp tempState) (tempMade, error) {
	name := tempName(spec.Token)
	if b.cfg.UseStack {
		tmpl, err := stackTemplate(spec, name, temp.vpc)
		if err != nil {
			return tempMade{}, err
		}
		id, err := b.ensureStack(ctx, c, name, tmpl, spec.Tags, spec.Token)
		return tempMade{instance: id}, err
	}
	if temp.instance != "" {
		b.log.Info("build instance exists", "region", c.region, "instance", temp.instance)
		return tempMade{instance: temp.instance, group: temp.group}, nil
	}
	gid := temp.group
	err := together(func() error {
		if temp.keyPair {
			return nil
		}
		return createKeyPair(ctx, c, name, spec.Tags)
	}, func() error {
		if gid != "" {
			return nil
		}
		var err error
		gid, err = createSecurityGroup(ctx, c, name, temp.vpc, spec.Tags)
		return err
	})
	if err != nil {
		return tempMade{}, err
	}
	spec.KeyName, spec.GroupID = name, gid
	id, err := b.runInstance(ctx, c, spec)
	return tempMade{instance: id, group: gid}, err
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
	// Secret variables are masked; so are the extra vars, which a
	// playbook may print and kiln treats as secrets.
	var secrets redact.Secrets
	for _, v := range in.Vars {
		if v.Secret {
			secrets.Add(v.Value)
		}
	}
	if in.UseCase != nil {
		secrets.Add(config.SecretsOf(in.UseCase.Provision)...)
	}
	text = secrets.String(text)
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

// finishBuild waits for the image and makes sure it and its snapshots
// carry the tags (from the last confirming read: no read of its own), and
// returns the removal of the temporary resources for the caller to run.
func (b *Backend) finishBuild(ctx context.Context, c *regional, in cloud.BuildInput, id string, tags map[string]string, made tempMade) (cloud.Image, func(context.Context) error, error) {
	done := step(in.Progress, "wait for image "+id)
	raw, err := b.waitAvailable(ctx, c.region, id)
	done(err)
	if err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	img, err := b.ensureImageTags(ctx, c.region, raw, tags)
	if err != nil {
		return cloud.Image{}, nil, fmt.Errorf("build %s: %w", in.Name, err)
	}
	made.object = b.stagedObject(in.Tags, in.Token)
	cleanup := func(ctx context.Context) error {
		done := step(in.Progress, "remove build resources")
		err := b.removeBuildResources(ctx, c, in.Token, made)
		done(err)
		if err != nil {
			return fmt.Errorf("build %s: image %s is ready but temporary resources remain (kiln cleanup removes them): %w", in.Name, id, err)
		}
		return nil
	}
	return img, cleanup, nil
}

// cleanupAfterFailure removes a failed build's temporary resources with a
// context of its own, so a deadline that ended the build does not also
// stop the cleanup.
func (b *Backend) cleanupAfterFailure(ctx context.Context, c *regional, in cloud.BuildInput) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Minute)
	defer cancel()
	if err := b.removeBuildResources(cctx, c, in.Token, tempMade{object: b.stagedObject(in.Tags, in.Token)}); err != nil {
		return fmt.Errorf("remove build resources after the failure (kiln cleanup removes them): %w", err)
	}
	return nil
}
