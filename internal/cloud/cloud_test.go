package cloud

import (
	"slices"
	"testing"
)

// A build's steps get the recipe's variables, then the release's identity
// from its tags; a recipe variable of the same name is not overridden.
func TestStepVars(t *testing.T) {
	tests := []struct {
		name string
		in   BuildInput
		want []Var
	}{
		{"no tags", BuildInput{Vars: []Var{{Name: "A", Value: "1"}}}, []Var{{Name: "A", Value: "1"}}},
		{"release", BuildInput{
			Vars: []Var{{Name: "TOKEN", Value: "s", Secret: true}},
			Tags: map[string]string{TagUseCase: "web", TagArch: "x86_64", TagVersion: "1.2", TagAssetID: "kiln-1", "other": "x"},
		}, []Var{{Name: "TOKEN", Value: "s", Secret: true}, {Name: "KILN_USE_CASE", Value: "web"}, {Name: "KILN_ARCH", Value: "x86_64"},
			{Name: "KILN_VERSION", Value: "1.2"}, {Name: "KILN_ASSET_ID", Value: "kiln-1"}}},
		{"recipe's own", BuildInput{
			Vars: []Var{{Name: "KILN_VERSION", Value: "mine"}},
			Tags: map[string]string{TagVersion: "1.2"},
		}, []Var{{Name: "KILN_VERSION", Value: "mine"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.StepVars()
			if !slices.Equal(got, tt.want) {
				t.Errorf("StepVars() = %+v, want %+v", got, tt.want)
			}
			if len(tt.in.Vars) > 0 && &got[0] == &tt.in.Vars[0] {
				t.Error("StepVars shares the input's slice")
			}
		})
	}
}
