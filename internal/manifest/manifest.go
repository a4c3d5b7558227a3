package manifest

import (
	"cmp"
	"slices"
)

// Entry is what a channel says about one use case in one region.
type Entry struct {
	Architecture    string `json:"architecture"`     // x86_64 or arm64
	DeprecationTime string `json:"deprecation_time"` // "" or RFC 3339
	ID              string `json:"id"`               // backend image id
	Name            string `json:"name"`             // image name
	Public          bool   `json:"public"`           // launchable by everyone
}

// Manifest maps use case → region → entry. Its zero value (nil) is an empty
// manifest for reading; Set needs a non-nil map, like any Go map.
type Manifest map[string]map[string]Entry

// Located is an Entry together with where it sits in a manifest.
type Located struct {
	UseCase, Region string
	Entry
}

// Set records e for useCase in region, replacing what was there. m must not
// be nil.
func (m Manifest) Set(useCase, region string, e Entry) {
	regions := m[useCase]
	if regions == nil {
		regions = make(map[string]Entry)
		m[useCase] = regions
	}
	regions[region] = e
}

// Get returns the entry for useCase in region and whether there is one.
func (m Manifest) Get(useCase, region string) (Entry, bool) {
	e, ok := m[useCase][region]
	return e, ok
}

// Entries returns every entry, sorted by use case, then region.
func (m Manifest) Entries() []Located {
	var out []Located
	for uc, regions := range m {
		for r, e := range regions {
			out = append(out, Located{UseCase: uc, Region: r, Entry: e})
		}
	}
	slices.SortFunc(out, func(a, b Located) int {
		return cmp.Or(cmp.Compare(a.UseCase, b.UseCase), cmp.Compare(a.Region, b.Region))
	})
	return out
}

// Equal reports whether m and o hold the same entries. A use case with no
// regions counts as absent, as it does in Encode.
func (m Manifest) Equal(o Manifest) bool {
	return len(Diff(m, o)) == 0
}
