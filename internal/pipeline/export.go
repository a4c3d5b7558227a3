package pipeline

import (
	"context"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// export writes the use case's export formats of the build region's copy
// with a backend that exports images elsewhere (aws: ExportImage to S3).
// The local backend makes its exports while building, as formats of the
// image itself: they are only listed, for the report.
func (p *Pipeline) export(ctx context.Context, r Run, u *config.UseCase, copies map[string]cloud.Image) ([]cloud.Export, error) {
	img, have := copies[p.Config.Location(u, p.Config.BuildRegion)] // in the account the use case is published into
	if len(u.Exports) == 0 || !have {
		return nil, nil
	}
	exp, ok := p.Backend.(cloud.Exporter)
	if !ok {
		if l, ok := p.Backend.(cloud.ExportLister); ok {
			return l.ImageExports(ctx, img.Region, img.ID)
		}
		return nil, nil
	}
	var out []cloud.Export
	for _, format := range u.Exports {
		var e cloud.Export
		err := p.step(ctx, r, cloud.PhasePublish, "export "+format, img.Region, img.ID, func(ctx context.Context) (string, error) {
			var err error
			e, err = exp.ExportImage(ctx, cloud.ExportInput{
				Region: img.Region, ImageID: img.ID, Format: format,
				Tags:  p.tags(r, cloud.PhasePublish),
				Token: cloud.Token(r.ID, "export", format),
			})
			return e.Location, err
		})
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}
