package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/teardown"
)

// expiredDeployments are the personal deployments past their expiry that
// `kiln cleanup --orphans` destroys, as kiln destroy would (the same
// plan, rules and verification; a protected one is refused, since cleanup
// has no --force-protected).
type expiredDeployments struct {
	d       *teardown.Destroyer
	plans   []*teardown.Plan
	reports []*teardown.Report
}

func findExpired(ctx context.Context, g *globalOptions, p *project) (*expiredDeployments, error) {
	d, err := p.destroyer(ctx, g)
	if err != nil {
		return nil, err
	}
	list, err := d.Expired()
	if err != nil {
		return nil, err
	}
	e := &expiredDeployments{d: d, reports: []*teardown.Report{}}
	for _, x := range list {
		plan, err := d.Plan(ctx, x.Name, teardown.Options{})
		if err != nil {
			return nil, fmt.Errorf("expired deployment %s: %w", x.Name, err)
		}
		e.plans = append(e.plans, plan)
		e.reports = append(e.reports, teardown.NewReport(plan))
	}
	return e, nil
}

// deletes counts the resources the teardowns would remove.
func (e *expiredDeployments) deletes() int {
	n := 0
	for _, p := range e.plans {
		n += p.Deletes
	}
	return n
}

// apply destroys each expired deployment that its rules allow; it
// returns how many could not be destroyed or left resources.
func (e *expiredDeployments) apply(ctx context.Context) (int, error) {
	bad := 0
	for i, plan := range e.plans {
		if len(plan.Refused) > 0 {
			bad++
			continue
		}
		rep, err := e.d.Apply(ctx, plan)
		e.reports[i] = rep
		switch {
		case errors.Is(err, teardown.ErrLeft) || errors.Is(err, teardown.ErrRefused):
			bad++
		case err != nil:
			return bad, fmt.Errorf("expired deployment %s: %w", plan.Deployment, err)
		}
	}
	return bad, nil
}

// print lists the expired deployments and what destroying them does.
func (e *expiredDeployments) print(w io.Writer) {
	if len(e.reports) == 0 {
		return
	}
	fmt.Fprintln(w, "\npersonal deployments past their expiry:")
	t := output.NewTable(w, "DEPLOYMENT", "TEMPLATE", "EXPIRED", "RESOURCES", "KEPT", "OUTCOME")
	for _, r := range e.reports {
		outcome := "destroy (plan)"
		switch {
		case len(r.Refused) > 0:
			outcome = "REFUSED: " + strings.Join(r.Refused, "; ")
		case r.Failed != "":
			outcome = "FAILED: " + r.Failed
		case r.Applied || r.After == "destroyed":
			outcome = string(r.After)
		}
		t.Row(r.Deployment, r.Template, r.Expires.Format("2006-01-02T15:04:05Z"), fmt.Sprint(r.Deletes), fmt.Sprint(len(r.Retained)), outcome)
	}
	t.Flush()
}
