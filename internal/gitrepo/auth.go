package gitrepo

import (
	"encoding/base64"
	"net/url"
	"os"
	"strconv"
)

// HTTPAuth returns environment entries that make git authenticate to the
// host of remoteURL, when it is http(s), with user and token as HTTP Basic
// credentials: an http.<scheme>://<host>/.extraHeader given through
// GIT_CONFIG_COUNT, so that the token is on no command line and in no
// configuration file. It takes the place of credentials the URL itself
// holds (a CI job's read-only clone token). Entries the environment
// already gives through GIT_CONFIG_COUNT stay. Nil for other remotes (ssh
// uses its keys).
func HTTPAuth(remoteURL, user, token string) []string {
	u, err := url.Parse(remoteURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || token == "" {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("GIT_CONFIG_COUNT"))
	if err != nil || n < 0 {
		n = 0
	}
	i := strconv.Itoa(n)
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + token))
	return []string{
		"GIT_CONFIG_COUNT=" + strconv.Itoa(n+1),
		"GIT_CONFIG_KEY_" + i + "=http." + u.Scheme + "://" + u.Host + "/.extraHeader",
		"GIT_CONFIG_VALUE_" + i + "=Authorization: Basic " + cred,
	}
}
