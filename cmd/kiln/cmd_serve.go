package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/download"
	"github.com/kiln-images/kiln/internal/ratelimit"
	"github.com/kiln-images/kiln/internal/server"
)

type serveOptions struct {
	listen          string
	tlsCert, tlsKey string
}

func newServeCommand(g *globalOptions) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR] [--tls-cert FILE --tls-key FILE]",
		Short: "Serve the project over HTTP: downloads, health",
		Long: `serve runs the project's HTTP server until SIGTERM or Ctrl-C, then finishes the
requests in flight (30s at most) and exits 0. It listens on serve.listen
(default 127.0.0.1:8080: this machine only; --listen :8080 for every address)
and speaks HTTPS with serve.tls_cert and tls_key (or the flags).

Mounted:
  /healthz                 200 when every part is ready, else 503 with why
  /streams/, /images/      with a distribution section: the download tree
                           (distribution.dir), exactly the files its index
                           names, rate-limited per client (distribution.rate_limit)

Add it as an LXD image remote (HTTPS):  lxc remote add NAME https://HOST:PORT --protocol simplestreams`,
		Example: `  kiln serve
  kiln serve --listen :8443 --tls-cert cert.pem --tls-key key.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			return runServe(cmd.Context(), g, cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "", "address to listen on, HOST:PORT (default serve.listen)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate, PEM (default serve.tls_cert)")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS private key, PEM (default serve.tls_key)")
	return cmd
}

func runServe(ctx context.Context, g *globalOptions, cfg *config.Config, o serveOptions) error {
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
	log := g.logger()
	srv := server.New(server.Config{Addr: sc.Listen, TLSCert: sc.TLSCert, TLSKey: sc.TLSKey, TrustedProxies: proxies, Log: log})
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, run := range runners {
		go run(ctx)
	}
	url := srv.URL(ln)
	fmt.Fprintf(g.streams.err, "kiln serve: %s (health: %s/healthz)\n", url, url)
	if cfg.Distribution != nil {
		fmt.Fprintf(g.streams.err, "downloads: %s/streams/v1/index.json  (lxc remote add %s %s --protocol simplestreams)\n", url, cfg.Project, url)
	}
	if err := srv.Serve(ctx, ln); err != nil {
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
