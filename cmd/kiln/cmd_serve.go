package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/download"
	"github.com/kiln-images/kiln/internal/ratelimit"
	"github.com/kiln-images/kiln/internal/server"
)

type serveOptions struct {
	listen          string
	tlsCert, tlsKey string
	tls             bool // resolved: the server speaks HTTPS

	// The console's drift check.
	checkEvery config.Duration
	warnBefore config.Duration
	gitRefs    string
	// The scheduler in the server.
	schedule bool
	channel  string
	// Actions.
	allowActions bool
	tokenFile    string
	commitOptions
}

func newServeCommand(g *globalOptions) *cobra.Command {
	o := serveOptions{checkEvery: config.Duration(checkEveryDefault), warnBefore: config.Duration(14 * 24 * time.Hour), channel: "latest"}
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR] [--check-every D] [--schedule] [--allow-actions --token-file FILE]",
		Short: "Serve the project over HTTP: the console, its API and metrics, downloads",
		Long: `serve runs the project's HTTP server until SIGTERM or Ctrl-C, then finishes the
requests in flight (30s at most) and exits 0. It listens on serve.listen
(default 127.0.0.1:8080: this machine only; --listen :8080 for every address)
and speaks HTTPS with serve.tls_cert and tls_key (or the flags).

Mounted:
  /                        the console: channels x regions by drift state, runs
                           with their timelines, drift and orphans, assets,
                           the schedule, deployments (read-only unless
                           --allow-actions)
  /api/v1/                 the same as JSON: the documents kiln runs, manifest
                           show, drift, assets, schedule and deployments print
                           with -o json
  /metrics                 Prometheus metrics
  /healthz                 200 when every part is ready, else 503 with why
  /streams/, /images/      with a distribution section: the download tree
                           (distribution.dir), exactly the files its index
                           names, rate-limited per client (distribution.rate_limit)

Pages never call the cloud: they read the journal, the manifests and the
results of a drift check and asset scan the server runs at start, every
--check-every and, with actions, on demand.

--schedule also runs the scheduled releases in the server, as
kiln schedule --daemon does (into --channel, with --commit and --push).

--allow-actions lets people holding the token (--token-file FILE, mode 600,
or $KILN_SERVE_TOKEN) start a release, promote behind the gates, run a
drift check and verify a deployment, from the pages (after logging in with
the token) or the API (Authorization: Bearer TOKEN). With --commit [--push]
what they write to a manifest or a record is committed. Without it the
server has no write path.

Exit 0 when stopped; 2 on error, or when stopping interrupted a release
(each is logged with the kiln release --resume that finishes it).

Add it as an LXD image remote (HTTPS):  lxc remote add NAME https://HOST:PORT --protocol simplestreams`,
		Example: `  kiln serve                                   # http://127.0.0.1:8080
  kiln serve --listen :8080 --check-every 5m
  kiln serve --schedule --commit --push        # and the scheduled releases
  kiln serve --allow-actions --token-file /etc/kiln/token
  kiln serve --listen :8443 --tls-cert cert.pem --tls-key key.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if o.tokenFile != "" && !o.allowActions {
				return argError(cmd, "--token-file goes with --allow-actions")
			}
			if !o.schedule && f.Changed("channel") {
				return argError(cmd, "--channel goes with --schedule (actions choose their channel)")
			}
			if o.checkEvery != 0 && o.checkEvery.Std() < time.Minute {
				return argError(cmd, "--check-every %s: give 0 (at start and on demand only) or at least 1m", o.checkEvery)
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runServe(ctx, g, p, o) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "", "address to listen on, HOST:PORT (default serve.listen)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate, PEM (default serve.tls_cert)")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS private key, PEM (default serve.tls_key)")
	f.Var(durationFlag{&o.checkEvery}, "check-every", "how often the server checks for drift and lists the assets (0: at start and on demand only)")
	f.Var(durationFlag{&o.warnBefore}, "warn-before", "the drift check warns about images deprecated within this window")
	f.StringVar(&o.gitRefs, "git-refs", "", "the drift check takes images referenced at git tags matching this pattern as not orphans")
	f.BoolVar(&o.schedule, "schedule", false, "also run the scheduled releases (as kiln schedule --daemon)")
	f.StringVar(&o.channel, "channel", o.channel, "with --schedule: channel the scheduled releases publish to")
	f.BoolVar(&o.allowActions, "allow-actions", false, "let holders of the token release, promote, check drift and verify deployments from the console and the API")
	f.StringVar(&o.tokenFile, "token-file", "", "with --allow-actions: file holding the token (default $"+serveTokenEnv+")")
	o.addFlags(cmd)
	completeChannels(g, cmd)
	return cmd
}

func runServe(ctx context.Context, g *globalOptions, p *project, o serveOptions) error {
	cfg := p.cfg
	sc := cfg.Serve
	if o.listen != "" {
		sc.Listen = o.listen
	}
	if o.tlsCert != "" || o.tlsKey != "" {
		if o.tlsCert == "" || o.tlsKey == "" {
			return usageError(errors.New("--tls-cert and --tls-key go together"))
		}
		sc.TLSCert, sc.TLSKey = o.tlsCert, o.tlsKey
	} else if sc.TLSCert != "" {
		sc.TLSCert, sc.TLSKey = cfg.Resolve(sc.TLSCert), cfg.Resolve(sc.TLSKey)
	}
	proxies, err := ratelimit.ParseNetworks(sc.TrustedProxies)
	if err != nil {
		return usageError(fmt.Errorf("serve.trusted_proxies: %w", err))
	}
	o.tls = sc.TLSCert != ""
	log := g.logger()
	srv := server.New(server.Config{Addr: sc.Listen, TLSCert: sc.TLSCert, TLSKey: sc.TLSKey, TrustedProxies: proxies, Log: log})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := mountConsole(ctx, g, p, srv, o)
	if err != nil {
		return err
	}
	defer cs.Close()
	var runners []func(context.Context)
	if dl, err := downloadHandler(cfg, g); err != nil {
		return err
	} else if dl != nil {
		dl.Mount(srv)
		runners = append(runners, dl.Run)
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	for _, run := range runners {
		go run(ctx)
	}
	bg := make(chan error, 1)
	go func() { bg <- cs.Run(ctx) }()
	url := srv.URL(ln)
	fmt.Fprintf(g.streams.err, "kiln serve: %s (health: %s/healthz)\n", url, url)
	if o.allowActions {
		fmt.Fprintf(g.streams.err, "actions allowed: log in at %s/login with the token\n", url)
	}
	if o.schedule {
		fmt.Fprintf(g.streams.err, "scheduled releases run in this server (into %s)\n", o.channel)
	}
	if cfg.Distribution != nil {
		fmt.Fprintf(g.streams.err, "downloads: %s/streams/v1/index.json  (lxc remote add %s %s --protocol simplestreams)\n", url, cfg.Project, url)
	}
	err = srv.Serve(ctx, ln)
	cancel()
	if berr := <-bg; berr != nil {
		return errors.Join(err, berr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(g.streams.err, "kiln serve: stopped")
	return nil
}

// downloadHandler is the download endpoint of the project's local tree,
// or nil when the project publishes no downloads.
func downloadHandler(cfg *config.Config, g *globalOptions) (*download.Handler, error) {
	ds := cfg.Distribution
	if ds == nil {
		return nil, nil
	}
	allow, err := ratelimit.ParseNetworks(ds.RateLimit.Allow)
	if err != nil {
		return nil, usageError(fmt.Errorf("distribution.rate_limit.allow: %w", err))
	}
	dir := cfg.Resolve(ds.Dir)
	if _, err := os.Stat(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	lim := ratelimit.New(ds.RateLimit.Requests, ds.RateLimit.Window.Std(), ds.RateLimit.MaxClients)
	return download.New(dir, download.Options{Limiter: lim, Allow: allow, MaxClients: ds.RateLimit.MaxClients, Log: g.logger()}), nil
}
