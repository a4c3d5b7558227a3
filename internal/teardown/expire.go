package teardown

import (
	"time"

	"github.com/kiln-images/kiln/internal/deploy/record"
)

// Expired is a personal deployment past its expiry.
type Expired struct {
	Name     string       `json:"name"`
	Template string       `json:"template"`
	Owner    string       `json:"owner"`
	Expires  time.Time    `json:"expires"`
	State    record.State `json:"state"`
}

// Expired returns the personal deployments (made from a template, with a
// record) whose expiry has passed and that are not destroyed yet, by
// name: what `kiln cleanup --orphans` destroys.
func (d *Destroyer) Expired() ([]Expired, error) {
	names, err := record.List(d.Config.Dir)
	if err != nil {
		return nil, err
	}
	now := d.now()
	out := []Expired{}
	for _, n := range names {
		if _, ok := d.Config.Deployments[n]; ok {
			continue
		}
		rec, ok, err := record.Load(d.Config.Dir, n)
		if err != nil {
			return nil, err
		}
		if !ok || rec.Template == "" || rec.Expires.IsZero() || now.Before(rec.Expires) || rec.State == record.StateDestroyed {
			continue
		}
		out = append(out, Expired{Name: n, Template: rec.Template, Owner: rec.Owner, Expires: rec.Expires, State: rec.State})
	}
	return out, nil
}
