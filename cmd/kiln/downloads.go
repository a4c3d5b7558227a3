package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/distribute"
	"github.com/kiln-images/kiln/internal/distribute/s3store"
	"github.com/kiln-images/kiln/internal/pipeline"
)

// downloads connects package distribute to a project: the pipeline's
// Indexer (publish and release index what they publish) and what `kiln
// index` runs.
type downloads struct {
	cfg     *config.Config
	backend cloud.Backend
	log     *slog.Logger
	hook    func(string)
	getenv  func(string) string

	mu      sync.Mutex
	reports []*distribute.Report
}

var _ pipeline.Indexer = (*downloads)(nil)

// newDownloads returns the project's downloads, or nil when it publishes
// none (no distribution section).
func newDownloads(cfg *config.Config, b cloud.Backend, log *slog.Logger, hook func(string)) *downloads {
	if cfg.Distribution == nil {
		return nil
	}
	return &downloads{cfg: cfg, backend: b, log: log, hook: hook, getenv: os.Getenv}
}

// store is the project's download tree.
func (d *downloads) store(ctx context.Context) (distribute.Store, error) {
	if d.cfg.Backend.Type == "aws" {
		return newS3Tree(ctx, d.cfg, d.backend, d.log)
	}
	return &distribute.LocalStore{Dir: d.cfg.Resolve(d.cfg.Distribution.Dir)}, nil
}

// publisher is a publisher of the project's tree with its signing key and
// retention.
func (d *downloads) publisher(ctx context.Context) (*distribute.Publisher, error) {
	key, err := distribute.LoadSigningKey(d.cfg, d.getenv)
	if err != nil {
		return nil, err
	}
	store, err := d.store(ctx)
	if err != nil {
		return nil, err
	}
	ds := d.cfg.Distribution
	refs, err := channel.References(ctx, d.cfg, ds.GitRefs)
	if err != nil {
		return nil, fmt.Errorf("distribution.git_refs: %w", err)
	}
	return &distribute.Publisher{
		Store: store, Project: d.cfg.Project, Key: key, Log: d.log, Hook: d.hook,
		Retention: distribute.Retention{Keep: ds.Keep, OlderThan: ds.OlderThan.Std(), Referenced: refs.Where},
	}, nil
}

// CheckRelease refuses a run the release checklist or a missing signing
// key would stop at publication.
func (d *downloads) CheckRelease(ctx context.Context, r pipeline.Run) error {
	version := r.Version
	if version == distribute.DefaultVersion(r.Created) {
		version = "" // a daily build: versioned by its start time
	}
	return d.checkUpFront(ctx, r.UseCase, version)
}

// checkUpFront runs the checks of a release before anything is built.
func (d *downloads) checkUpFront(ctx context.Context, useCase, version string) error {
	if _, err := distribute.LoadSigningKey(d.cfg, d.getenv); err != nil {
		return err
	}
	return distribute.CheckRelease(ctx, d.cfg, useCase, version)
}

// IndexRelease indexes the run just published to channel, as the channel's
// manifest now has it.
func (d *downloads) IndexRelease(ctx context.Context, r pipeline.Run, ch string) error {
	u, err := d.cfg.UseCase(r.UseCase)
	if err != nil {
		return err
	}
	m, err := channel.Load(d.cfg, ch)
	if err != nil {
		return err
	}
	rels, err := distribute.FromManifest(ctx, d.backend, d.cfg, ch, m, u.ManifestKey(r.Arch))
	if err != nil {
		return err
	}
	rels = slices.DeleteFunc(rels, func(rel distribute.Release) bool { return rel.AssetID != r.ID })
	pub, err := d.publisher(ctx)
	if err != nil {
		return err
	}
	rep, err := pub.Publish(ctx, rels, true)
	if rep != nil {
		d.mu.Lock()
		d.reports = append(d.reports, rep)
		d.mu.Unlock()
	}
	return err
}

// checkRelease is the release checklist and the signing key, checked by
// build and release before a new run starts.
func (p *project) checkRelease(ctx context.Context, useCase, version string) error {
	if p.downloads == nil {
		return nil
	}
	return p.downloads.checkUpFront(ctx, useCase, version)
}

// newS3Tree is the project's tree in its distribution bucket (aws).
func newS3Tree(ctx context.Context, cfg *config.Config, b cloud.Backend, log *slog.Logger) (distribute.Store, error) {
	ab, ok := b.(interface {
		SDKConfig() aws.Config
		CheckAccount(context.Context) error
	})
	if !ok {
		return nil, fmt.Errorf("the %s backend has no S3 for distribution.aws.bucket", b.Name())
	}
	if err := ab.CheckAccount(ctx); err != nil {
		return nil, err
	}
	a := cfg.Distribution.AWS
	return s3store.New(ab.SDKConfig(), a.Bucket, a.Region, cfg.Project, log), nil
}
