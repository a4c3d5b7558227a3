package distribute

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Images is what finding a release's files needs from a backend.
type Images interface {
	Image(ctx context.Context, region, id string) (cloud.Image, error)
	ListAssets(ctx context.Context, region string, f cloud.Filter) ([]cloud.Asset, error)
}

// blobs is implemented by backends whose exports are local files (the
// local backend): the file of a format and the sha256 it must have.
type blobs interface {
	DiskBlob(ctx context.Context, region, id, format string) (path, sha256 string, err error)
}

// FromManifest returns the releases a channel's manifest points at, each
// with the files of its use case's export formats: local files on the
// local backend, the S3 objects ExportImage wrote on aws. keys, when not
// empty, limits it to those manifest keys.
func FromManifest(ctx context.Context, b Images, cfg *config.Config, channel string, m manifest.Manifest, keys ...string) ([]Release, error) {
	var out []Release
	for _, key := range slices.Sorted(maps.Keys(m)) {
		if len(keys) > 0 && !slices.Contains(keys, key) {
			continue
		}
		entries := m[key]
		if len(entries) == 0 {
			continue
		}
		images := map[string]string{}
		for region, e := range entries {
			images[region] = e.ID
		}
		region := cfg.BuildRegion
		if _, ok := entries[region]; !ok {
			region = slices.Sorted(maps.Keys(entries))[0]
		}
		img, err := b.Image(ctx, region, entries[region].ID)
		if err != nil {
			return nil, fmt.Errorf("channel %s, %s: image %s in %s: %w", channel, key, entries[region].ID, region, err)
		}
		rel, err := releaseOf(cfg, channel, img)
		if err != nil {
			return nil, fmt.Errorf("channel %s, %s: %w", channel, key, err)
		}
		rel.Images = images
		u, _ := cfg.UseCase(rel.UseCase)
		if len(u.Exports) == 0 {
			continue // nothing to download
		}
		if rel.Files, err = sourceFiles(ctx, b, cfg, img, u.Exports); err != nil {
			return nil, fmt.Errorf("channel %s, %s: %w", channel, key, err)
		}
		if rel.Notes, err = ReleaseNotes(cfg, rel.Version); err != nil {
			return nil, err
		}
		out = append(out, rel)
	}
	return out, nil
}

// releaseOf reads a release's identity from its image's tags.
func releaseOf(cfg *config.Config, channel string, img cloud.Image) (Release, error) {
	t := img.Tags
	rel := Release{
		Channel: channel, UseCase: t[cloud.TagUseCase], Arch: t[cloud.TagArch], Version: t[cloud.TagVersion],
		AssetID: t[cloud.TagAssetID], Name: img.Name,
	}
	if rel.UseCase == "" || rel.Arch == "" || rel.Version == "" || rel.AssetID == "" {
		return rel, fmt.Errorf("image %s in %s lacks kiln's tags (%s, %s, %s, %s); only images kiln released can be indexed",
			img.ID, img.Region, cloud.TagUseCase, cloud.TagArch, cloud.TagVersion, cloud.TagAssetID)
	}
	u, err := cfg.UseCase(rel.UseCase)
	if err != nil {
		return rel, err
	}
	rel.Title = u.Description
	if rel.Created, err = journal.ParseAssetID(rel.AssetID); err != nil {
		return rel, fmt.Errorf("image %s: %w", img.ID, err)
	}
	return rel, nil
}

// sourceFiles finds the files of an image's export formats.
func sourceFiles(ctx context.Context, b Images, cfg *config.Config, img cloud.Image, formats []string) ([]SourceFile, error) {
	var out []SourceFile
	if bl, ok := b.(blobs); ok {
		for _, f := range formats {
			p, digest, err := bl.DiskBlob(ctx, img.Region, img.ID, f)
			if err != nil {
				return nil, err
			}
			out = append(out, SourceFile{Format: f, Source: Source{File: p}, SHA256: digest})
		}
		return out, nil
	}
	// aws: ExportImage's files in S3, found by the run's tag.
	run := img.Tags[cloud.TagAssetID]
	assets, err := b.ListAssets(ctx, img.Region, cloud.Filter{Tags: map[string]string{cloud.TagAssetID: run}})
	if err != nil {
		return nil, err
	}
	byFormat := map[string]string{}
	for _, a := range assets {
		if a.Kind == cloud.KindExport {
			byFormat[strings.TrimPrefix(path.Ext(a.ID), ".")] = a.ID
		}
	}
	for _, f := range formats {
		loc, ok := byFormat[f]
		if !ok {
			return nil, fmt.Errorf("run %s has no %s export in %s (exports found: %v): publish exports it; rerun `kiln publish --run %s`",
				run, f, img.Region, slices.Sorted(maps.Keys(byFormat)), run)
		}
		out = append(out, SourceFile{Format: f, Source: Source{Object: loc}})
	}
	return out, nil
}

// ReleaseNotes returns the changelog of a version when the project keeps
// one (distribution.changelog), or nil.
func ReleaseNotes(cfg *config.Config, version string) ([]byte, error) {
	ds := cfg.Distribution
	if ds == nil || ds.Changelog == "" {
		return nil, nil
	}
	p := cfg.Resolve(strings.ReplaceAll(ds.Changelog, "{version}", version))
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // versions without a checklist (daily builds) have none
	}
	return data, err
}
