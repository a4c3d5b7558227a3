package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/distribute"
	"github.com/kiln-images/kiln/internal/minisign"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

// The download check, `kiln verify --image FILE`. It lives in its own
// file: `kiln verify DEP` (deployments) is the same command's other use.

type verifyImageOptions struct {
	image     string
	index     string
	publicKey string
}

func newVerifyImageCommand(g *globalOptions) *cobra.Command {
	var o verifyImageOptions
	cmd := &cobra.Command{
		Use:   "verify --image FILE [--index URL|DIR] [--public-key KEY|FILE]",
		Short: "Check a downloaded image against the signed index",
		Long: `verify --image checks a downloaded file: it fetches the index
(streams/v1/index.json under URL or DIR; default the project's distribution
tree), verifies its minisign signature with the project's public key
(distribution.public_key, or --public-key: the RW... line or a minisign.pub
file), checks every products file against the index and its own signature,
and looks the file's sha256 up among the indexed files — a decompressed .gz
matches its uncompressed sha256. Without a kiln.yaml, give --index and
--public-key.

Exit 0 when the file is verified, 1 when it is not (corrupt, incomplete, not
in the index, or a signature that does not verify), 2 on error.`,
		Example: `  kiln verify --image debian-sandbox-x86_64-1.0.qcow2
  kiln verify --image disk.raw.gz --index https://images.example.org/ --public-key minisign.pub`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runVerifyImage(cmd.Context(), g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.image, "image", "", "the downloaded file (required)")
	f.StringVar(&o.index, "index", "", "the tree: an http(s) URL or a directory (default: distribution.dir)")
	f.StringVar(&o.publicKey, "public-key", "", "minisign public key (RW... or a minisign.pub file; default: distribution.public_key)")
	return cmd
}

func runVerifyImage(ctx context.Context, g *globalOptions, o verifyImageOptions) error {
	if o.image == "" {
		return usageError(fmt.Errorf("--image is required: the downloaded file to check"))
	}
	if _, err := os.Stat(o.image); err != nil {
		return usageError(fmt.Errorf("--image: %w", err))
	}
	key, fetcher, err := verifySources(g, o)
	if err != nil {
		return err
	}
	chk, err := distribute.VerifyImage(ctx, fetcher, key, o.image)
	if err != nil {
		return err
	}
	if g.json() {
		if err := g.write(report.VerifyImage{Schema: report.SchemaVerifyImage, ImageCheck: chk}); err != nil {
			return err
		}
	} else {
		printImageCheck(g, chk)
	}
	if !chk.Verified {
		return findings("%s: NOT verified: %s", o.image, chk.Problem)
	}
	return nil
}

// verifySources finds the public key and the tree, from the flags or else
// the project.
func verifySources(g *globalOptions, o verifyImageOptions) (minisign.PublicKey, distribute.Fetcher, error) {
	var key minisign.PublicKey
	var err error
	needConfig := o.publicKey == "" || o.index == ""
	var cfgErr error
	cfg, cfgErr := g.loadConfig()
	if needConfig && cfgErr != nil {
		return key, nil, fmt.Errorf("%w (without a project, give --index and --public-key)", cfgErr)
	}
	switch {
	case o.publicKey == "":
		if key, err = distribute.PublicKey(cfg); err != nil {
			return key, nil, usageError(err)
		}
	case isKeyLine(o.publicKey):
		key, _ = minisign.ParsePublicKey(o.publicKey)
	default:
		data, err := os.ReadFile(o.publicKey)
		if err != nil {
			return key, nil, usageError(fmt.Errorf("--public-key: %w", err))
		}
		if key, err = minisign.ParsePublicKey(string(data)); err != nil {
			return key, nil, usageError(fmt.Errorf("--public-key %s: %w", o.publicKey, err))
		}
	}
	switch {
	case strings.HasPrefix(o.index, "http://") || strings.HasPrefix(o.index, "https://"):
		f, err := distribute.NewHTTPFetcher(o.index, &http.Client{Timeout: 2 * time.Minute})
		if err != nil {
			return key, nil, usageError(fmt.Errorf("--index: %w", err))
		}
		return key, f, nil
	case o.index != "":
		return key, distribute.DirFetcher{Dir: o.index}, nil
	case cfg.Distribution == nil:
		return key, nil, usageError(fmt.Errorf("%s has no distribution section: give --index", cfg.Path))
	case cfg.Backend.Type == "aws":
		return key, nil, usageError(fmt.Errorf("give --index with the URL of the CloudFront distribution (kiln distribution plan shows it)"))
	}
	return key, distribute.DirFetcher{Dir: cfg.Resolve(cfg.Distribution.Dir)}, nil
}

func printImageCheck(g *globalOptions, c *distribute.ImageCheck) {
	w := g.streams.out
	fmt.Fprintf(w, "file    %s (%d bytes)\nsha256  %s\nindex   %s\n", c.File, c.Size, c.SHA256, c.Index)
	if c.Signer != "" {
		fmt.Fprintf(w, "signed  by key %s: verified\n", c.Signer)
	}
	if !c.Verified {
		fmt.Fprintf(w, "result  NOT verified: %s\n", c.Problem)
		return
	}
	fmt.Fprintln(w, "result  verified")
	t := output.NewTable(w, "CHANNEL", "PRODUCT", "VERSION", "SERIAL", "FTYPE", "PATH")
	for _, m := range c.Matches {
		t.Row(m.Channel, m.Product, m.Label, m.Version, m.FType, m.Path)
	}
	t.Flush()
}

// isKeyLine reports whether s is a public key itself rather than the name
// of a file holding one.
func isKeyLine(s string) bool {
	_, err := minisign.ParsePublicKey(s)
	return err == nil
}
