package aws

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// ec2ImageDataType makes SSM check that the value is an image id in the
// parameter's region.
const ec2ImageDataType = "aws:ec2:image"

// paramUndo restores one parameter to what it was before PutParameters.
type paramUndo struct {
	c       *regional
	name    string
	existed bool
	value   string
	kind    ssmtypes.ParameterType
	data    string // data type
}

// PutParameters writes each value as an SSM parameter of data type
// aws:ec2:image in its region, all or none: when one fails, the ones
// already written get their previous value back, and the ones that did not
// exist before are deleted.
func (b *Backend) PutParameters(ctx context.Context, values []cloud.Parameter) error {
	for i, v := range values {
		if v.Name == "" || v.ImageID == "" || v.Region == "" {
			return cloud.Mark(fmt.Errorf("put parameters: value %d (%q in %q -> %q): name, region and image id are required", i, v.Name, v.Region, v.ImageID), cloud.ErrInvalid)
		}
		if err := checkTags(v.Tags); err != nil {
			return fmt.Errorf("put parameter %s in %s: %w", v.Name, v.Region, err)
		}
	}
	for _, v := range values {
		if err := b.checkLocation(ctx, v.Region); err != nil {
			return err
		}
	}
	var undo []paramUndo
	for _, v := range values {
		u, err := b.putParameter(ctx, v)
		if err == nil {
			undo = append(undo, u)
			continue
		}
		err = fmt.Errorf("put parameter %s in %s: %w", v.Name, v.Region, err)
		if u.c != nil {
			// The write may have happened before the failure (tagging).
			undo = append(undo, u)
		}
		if rerr := b.restoreParameters(ctx, undo); rerr != nil {
			return errors.Join(err, fmt.Errorf("restoring the other regions also failed, parameters are inconsistent: %w", rerr))
		}
		return fmt.Errorf("%w (the other regions were restored)", err)
	}
	return nil
}

// putParameter writes one value and returns how to undo it. AWS refuses
// tags together with Overwrite, so an existing parameter is overwritten
// first and tagged after.
func (b *Backend) putParameter(ctx context.Context, v cloud.Parameter) (paramUndo, error) {
	c, err := b.clients.region(v.Region)
	if err != nil {
		return paramUndo{}, err
	}
	u := paramUndo{name: v.Name}
	cur, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(v.Name)})
	switch err = classify(err); {
	case err == nil:
		u.existed, u.value = true, aws.ToString(cur.Parameter.Value)
		u.kind, u.data = cur.Parameter.Type, aws.ToString(cur.Parameter.DataType)
	case errors.Is(err, cloud.ErrNotFound):
	default:
		return paramUndo{}, fmt.Errorf("read the current value: %w", err)
	}
	in := &ssm.PutParameterInput{
		Name:     aws.String(v.Name),
		Value:    aws.String(v.ImageID),
		Type:     ssmtypes.ParameterTypeString,
		DataType: aws.String(ec2ImageDataType),
	}
	if u.existed {
		in.Overwrite = aws.Bool(true)
	} else {
		in.Tags = ssmTags(v.Tags)
	}
	if _, err := c.ssm.PutParameter(ctx, in); err != nil {
		return paramUndo{}, classify(err)
	}
	u.c = c
	if u.existed && len(v.Tags) > 0 {
		_, err := c.ssm.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{
			ResourceType: ssmtypes.ResourceTypeForTaggingParameter,
			ResourceId:   aws.String(v.Name),
			Tags:         ssmTags(v.Tags),
		})
		if err != nil {
			return u, fmt.Errorf("tag: %w", classify(err))
		}
	}
	b.log.Info("parameter written", "region", v.Region, "name", v.Name, "image", v.ImageID)
	return u, nil
}

// restoreParameters undoes writes, newest first, and reports every
// failure.
func (b *Backend) restoreParameters(ctx context.Context, undo []paramUndo) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	var errs []error
	for _, u := range slices.Backward(undo) {
		var err error
		if u.existed {
			_, err = u.c.ssm.PutParameter(ctx, &ssm.PutParameterInput{
				Name:      aws.String(u.name),
				Value:     aws.String(u.value),
				Type:      u.kind,
				DataType:  optional(u.data),
				Overwrite: aws.Bool(true),
			})
		} else {
			_, err = u.c.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(u.name)})
			if errors.Is(classify(err), cloud.ErrNotFound) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %s in %s: %w", u.name, u.c.region, classify(err)))
			continue
		}
		b.log.Info("parameter restored", "region", u.c.region, "name", u.name, "existed", u.existed)
	}
	return errors.Join(errs...)
}

func ssmTags(m map[string]string) []ssmtypes.Tag {
	var out []ssmtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// optional returns nil for "", so the API applies its default.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// getParameter reads one parameter; absent is not an error.
func getParameter(ctx context.Context, c *regional, name string) (ssmtypes.Parameter, bool, error) {
	out, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err = classify(err); errors.Is(err, cloud.ErrNotFound) {
		return ssmtypes.Parameter{}, false, nil
	} else if err != nil {
		return ssmtypes.Parameter{}, false, fmt.Errorf("read parameter %s in %s: %w", name, c.region, err)
	}
	return *out.Parameter, true, nil
}
