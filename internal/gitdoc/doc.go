// Package gitdoc records a change kiln made to a channel's manifest on a
// branch of the project's git remote: pushed onto the branch itself
// (Push), or on a branch of its own with a merge or pull request into it
// (Propose).
//
// Either way the commit is made on the newest commit of the branch it is
// for, fetched just before, and holds the manifest alone. The change is
// applied to the manifest as that commit has it — the entries of the use
// cases the change is about replace theirs, every other entry stays — so
// a checkout that is behind (a CI job started before another pipeline
// pushed) neither undoes the other's entries nor conflicts with them.
// When the branch moves between the fetch and the push, the remote
// refuses the push and the change is applied again on the new tip: two
// kiln processes writing one channel at once both land, one after the
// other. This is the same property a per-channel lock gives, kept by the
// remote itself.
package gitdoc
