package config

// Forge says where `--merge-request` opens merge requests (GitLab) or
// pull requests (GitHub). Every field may be left out: kiln then reads it
// from the git remote. forge: in kiln.yaml.
type Forge struct {
	// Type is gitlab or github; default: guessed from the remote's host
	// name.
	Type string `yaml:"type"`
	// Remote is the git remote kiln fetches from and pushes to; default
	// origin.
	Remote string `yaml:"remote"`
	// APIURL is the forge's API root; default: from the remote's URL
	// (https://HOST/api/v4 for GitLab, https://api.github.com for
	// github.com, https://HOST/api/v3 for GitHub Enterprise).
	APIURL string `yaml:"api_url"`
	// Project is group/project (GitLab, groups may nest) or owner/repo
	// (GitHub); default: from the remote's URL.
	Project string `yaml:"project"`
	// TargetBranch is the branch requests merge into; default: the
	// remote's default branch.
	TargetBranch string `yaml:"target_branch"`
	// TokenEnv names the environment variable holding the API token;
	// default GITLAB_TOKEN or GITHUB_TOKEN. The token itself never
	// belongs in kiln.yaml.
	TokenEnv string `yaml:"token_env"`
}

// The forges kiln knows.
const (
	ForgeGitLab = "gitlab"
	ForgeGitHub = "github"
)

// DefaultTokenEnv is the variable a forge's token is read from when
// forge.token_env does not say.
func DefaultTokenEnv(forge string) string {
	if forge == ForgeGitHub {
		return "GITHUB_TOKEN"
	}
	return "GITLAB_TOKEN"
}
