package scale

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

// Options are the flags every scale benchmark takes: what to measure, how
// often, and where the report goes.
type Options struct {
	Kiln, Baseline, BaselineName string
	Backends                     string
	LocalRegions, AWSRegions     int
	Reps                         int
	Out                          string
	Keep                         bool
}

// Register defines the options' flags on fs.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Kiln, "kiln", "", "the kiln binary to measure (required)")
	fs.StringVar(&o.Baseline, "baseline", "", "another kiln binary to measure side by side, e.g. an earlier commit")
	fs.StringVar(&o.BaselineName, "baseline-name", "baseline", "what to call the baseline in the report")
	fs.StringVar(&o.Backends, "backends", "local,aws", "backends to measure")
	fs.IntVar(&o.LocalRegions, "regions", 16, "local regions")
	fs.IntVar(&o.AWSRegions, "aws-regions", 16, "aws regions")
	fs.IntVar(&o.Reps, "reps", 5, "rounds; each runs every variant once")
	fs.StringVar(&o.Out, "out", "", "write the markdown report here (default: stdout)")
	fs.BoolVar(&o.Keep, "keep", false, "leave the projects (and local stores) in place for inspection")
}

// Bench measures one backend and writes its part of the report to w.
type Bench func(ctx context.Context, w io.Writer) error

// Main runs the benches named in -backends, in that order, and writes their
// report to -out or stdout; it exits with a message prefixed by name when
// a flag is missing or a bench fails. An interrupt cancels the benches'
// context, so that they stop their servers and remove their projects.
func Main(name string, o Options, benches map[string]Bench) {
	if o.Kiln == "" {
		fmt.Fprintf(os.Stderr, "%s: -kiln is required\n", name)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var report strings.Builder
	for _, b := range strings.Split(o.Backends, ",") {
		bench, ok := benches[b]
		if !ok {
			fmt.Fprintf(os.Stderr, "%s: unknown backend %q\n", name, b)
			os.Exit(1)
		}
		if err := bench(ctx, &report); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
	}
	if o.Out == "" {
		fmt.Print(report.String())
		return
	}
	if err := os.WriteFile(o.Out, []byte(report.String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// KilnVariants are the kiln binaries to measure (-kiln, and -baseline when
// given), each running args with env and checking its answer with check.
// counts returns the calls made since it was last called.
func (o Options) KilnVariants(env, args []string, counts func() (int, string), check func(Result) error) []Variant {
	var vs []Variant
	add := func(name, bin string) {
		vs = append(vs, Variant{Name: name, Run: func(ctx context.Context) (Sample, error) {
			counts() // drop what came before
			res, err := Kiln(ctx, bin, env, args...)
			if err != nil {
				return Sample{}, err
			}
			if err := check(res); err != nil {
				return Sample{}, fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, res.Stderr)
			}
			n, note := counts()
			return Sample{Wall: res.Wall, CPU: res.CPU, Calls: n, Note: note}, nil
		}})
	}
	add("kiln", o.Kiln)
	if o.Baseline != "" {
		add(o.BaselineName, o.Baseline)
	}
	return vs
}

// Project is a benchmark's kiln project, in a temporary directory of its
// own, as kiln loads it.
type Project struct {
	Dir     string
	Path    string // its kiln.yaml
	Regions []string
	Config  *config.Config
	keep    bool
}

// NewProject writes a project for backend ("local" or "aws") with its
// -regions or -aws-regions regions and useCases use cases into a new
// temporary directory named after prefix. Close removes it.
func (o Options) NewProject(prefix, backend string, useCases int) (*Project, error) {
	n := o.LocalRegions
	if backend == "aws" {
		n = o.AWSRegions
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	p := &Project{Dir: dir, keep: o.Keep}
	if err := p.write(backend, n, useCases); err != nil {
		p.Close()
		return nil, fmt.Errorf("%s project: %w", backend, err)
	}
	return p, nil
}

func (p *Project) write(backend string, n, useCases int) error {
	var err error
	if p.Regions, err = Regions(backend, n); err != nil {
		return err
	}
	if p.Path, err = WriteProject(p.Dir, backend, p.Regions, UseCases(useCases)); err != nil {
		return err
	}
	p.Config, err = config.Load(p.Path)
	return err
}

// Close removes the project's directory unless -keep was given.
func (p *Project) Close() {
	if p.keep {
		fmt.Fprintln(os.Stderr, "kept", p.Dir)
		return
	}
	os.RemoveAll(p.Dir)
}

// Moto is a moto server with a counting proxy in front: the seeding talks
// to URL, so that only what is measured, through Counter, is counted.
type Moto struct {
	URL     string
	Counter *Counter
	server  *awstest.Moto
}

// StartMoto starts moto, warms it up and starts its counting proxy.
func StartMoto(ctx context.Context) (*Moto, error) {
	fmt.Fprintln(os.Stderr, "aws: starting moto...")
	server, err := awstest.Launch(ctx)
	if err != nil {
		return nil, err
	}
	m := &Moto{URL: server.URL, server: server}
	if err := server.Warm(ctx); err != nil {
		m.Close()
		return nil, err
	}
	if m.Counter, err = StartCounter(server.URL); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Take returns the calls counted since the last Take, in total and by
// action: the counts of a Variant.
func (m *Moto) Take() (int, string) {
	cs := m.Counter.Take()
	return cs.Total(), cs.String()
}

// Close stops the proxy and moto.
func (m *Moto) Close() {
	if m.Counter != nil {
		m.Counter.Close()
	}
	m.server.Close()
}

// Warm runs every variant once, untimed, so that the page cache holds what
// the timed rounds read.
func Warm(ctx context.Context, vs []Variant) error {
	for _, v := range vs {
		if _, err := v.Run(ctx); err != nil {
			return fmt.Errorf("%s, warm-up: %w", v.Name, err)
		}
	}
	return nil
}

// LastCalls lists each variant's calls of the last round, by action.
func LastCalls(w io.Writer, vs []Variant, samples map[string][]Sample) {
	for _, v := range vs {
		ss := samples[v.Name]
		fmt.Fprintf(w, "- %s, calls of the last round: %s\n", v.Name, ss[len(ss)-1].Note)
	}
	fmt.Fprintln(w)
}
