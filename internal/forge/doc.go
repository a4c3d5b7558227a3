// Package forge opens merge requests on GitLab and pull requests on GitHub
// through their REST APIs, and finds the one already open for a branch, so
// that a rerun of the command that wanted it finds it instead of opening a
// second.
//
// It knows only what kiln asks of a forge: find the open request from a
// source branch into a target branch, and open one. Which forge a
// repository lives on, and its API address and project, are guessed from
// the git remote's URL when kiln.yaml does not say (ParseRemote).
//
// The API token is held by the client and sent only in the request
// header the forge expects; it never appears in errors, logs or results.
package forge
