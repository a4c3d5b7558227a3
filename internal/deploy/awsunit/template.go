package awsunit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"go.yaml.in/yaml/v3"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// maxTemplateBody is the largest template CloudFormation takes in a
// request; larger ones must be uploaded to S3 first, which kiln does not
// do yet.
const maxTemplateBody = 51200

// template is what kiln reads of a CloudFormation template (JSON or YAML:
// the YAML decoder reads both, and leaves the short-form tags such as !Ref
// in the parts it does not decode alone).
type template struct {
	Parameters map[string]templateParam    `yaml:"Parameters"`
	Resources  map[string]templateResource `yaml:"Resources"`
}

type templateParam struct {
	Type    string    `yaml:"Type"`
	Default yaml.Node `yaml:"Default"`
	NoEcho  yaml.Node `yaml:"NoEcho"`
}

// noEcho reports whether CloudFormation masks the parameter's value.
func (p templateParam) noEcho() bool { return strings.EqualFold(p.NoEcho.Value, "true") }

type templateResource struct {
	Type           string    `yaml:"Type"`
	DeletionPolicy yaml.Node `yaml:"DeletionPolicy"`
}

// retained reports whether CloudFormation keeps the resource when the
// stack is deleted.
func (r templateResource) retained() bool {
	return strings.HasPrefix(r.DeletionPolicy.Value, "Retain")
}

func parseTemplate(body []byte) (*template, error) {
	var t template
	if err := yaml.Unmarshal(body, &t); err != nil {
		return nil, err
	}
	if len(t.Resources) == 0 {
		return nil, fmt.Errorf("no Resources")
	}
	return &t, nil
}

// spec is what a stack unit asks CloudFormation for: the template, the
// parameters and the tags, and the names derived from them.
type spec struct {
	stack     string // the stack's name
	file      string // the template file, for messages
	body      string
	digest    string // sha256 of body, hex
	tmpl      *template
	params    []cfntypes.Parameter
	public    map[string]string // parameter values a plan may show
	noEcho    map[string]bool   // parameters CloudFormation masks
	caps      []cfntypes.Capability
	tags      map[string]string // the stack's tags
	changeSet string            // the name of the change set taking the stack to this spec
}

// Stack tags besides Unit.Tags.
const (
	tagToken    = cloud.TagToken  // the Unit.Token the stack is at
	tagTemplate = "kiln:template" // the digest of its template
)

// templatePath resolves the unit's template file.
func templatePath(u deploy.Unit) string {
	p := u.Config.Stack.Template
	if !filepath.IsAbs(p) && u.Dir != "" {
		p = filepath.Join(u.Dir, p)
	}
	return p
}

// templateDigest reads the unit's template and returns its text and
// sha256.
func templateDigest(u deploy.Unit) (string, []byte, error) {
	path := templatePath(u)
	body, err := os.ReadFile(path)
	if err != nil {
		return "", nil, cloud.Mark(fmt.Errorf("unit %s: stack.template: %w", u.Name, err), cloud.ErrInvalid)
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), body, nil
}

// specOf works out what the unit asks for, and refuses what CloudFormation
// would refuse or what would leak a secret: a template that is missing,
// unreadable or too large, a parameter the template does not declare, one
// it requires that kiln.yaml does not give, a secret into a parameter
// that is not NoEcho.
func specOf(u deploy.Unit) (*spec, error) {
	if u.Config == nil || u.Config.Stack == nil {
		return nil, cloud.Mark(fmt.Errorf("unit %s is not a stack unit", u.Name), cloud.ErrInvalid)
	}
	name, err := physicalName(u)
	if err != nil {
		return nil, err
	}
	digest, body, err := templateDigest(u)
	if err != nil {
		return nil, err
	}
	s := &spec{stack: name, file: templatePath(u), body: string(body), digest: digest, public: map[string]string{}, noEcho: map[string]bool{}}
	bad := func(format string, args ...any) (*spec, error) {
		return nil, cloud.Mark(fmt.Errorf("unit %s: template %s: %s", u.Name, s.file, fmt.Sprintf(format, args...)), cloud.ErrInvalid)
	}
	if len(body) > maxTemplateBody {
		return bad("%d bytes; CloudFormation takes at most %d in a request (templates uploaded to S3 are not supported yet)", len(body), maxTemplateBody)
	}
	if s.tmpl, err = parseTemplate(body); err != nil {
		return bad("not a CloudFormation template: %v", err)
	}
	cfg := u.Config.Stack
	for _, p := range slices.Sorted(maps.Keys(cfg.Parameters)) {
		decl, ok := s.tmpl.Parameters[p]
		if !ok {
			return bad("stack.parameters.%s: the template declares no parameter %s (it declares: %s)", p, p, strings.Join(slices.Sorted(maps.Keys(s.tmpl.Parameters)), ", "))
		}
		v, secret, err := u.Expand(cfg.Parameters[p], nil)
		if err != nil {
			return bad("stack.parameters.%s: %v", p, err)
		}
		if secret && !decl.noEcho() {
			return bad("stack.parameters.%s gets a secret, but the template does not declare %s with NoEcho: true, so CloudFormation would show its value to anyone who may describe the stack", p, p)
		}
		s.params = append(s.params, cfntypes.Parameter{ParameterKey: aws.String(p), ParameterValue: aws.String(v)})
		if decl.noEcho() {
			s.noEcho[p] = true
		} else {
			s.public[p] = v
		}
	}
	for _, p := range slices.Sorted(maps.Keys(s.tmpl.Parameters)) {
		if _, ok := cfg.Parameters[p]; !ok && s.tmpl.Parameters[p].Default.Kind == 0 {
			return bad("parameter %s has no Default and stack.parameters does not give it", p)
		}
	}
	for _, c := range cfg.Capabilities {
		s.caps = append(s.caps, cfntypes.Capability(c))
	}
	s.tags = u.WithTags(map[string]string{tagToken: u.Token, tagTemplate: digest[:16]})
	s.changeSet = "kiln-" + cloud.Token(u.Token, digest)
	return s, nil
}

func (s *spec) cfnTags() []cfntypes.Tag {
	out := make([]cfntypes.Tag, 0, len(s.tags))
	for _, k := range slices.Sorted(maps.Keys(s.tags)) {
		out = append(out, cfntypes.Tag{Key: aws.String(k), Value: aws.String(s.tags[k])})
	}
	return out
}
