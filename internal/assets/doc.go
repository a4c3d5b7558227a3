// Package assets finds every resource kiln made, by its tags, in every
// region, and deletes what a cleanup plan says may go: in dependency order,
// in parallel across regions, retrying what is "not yet" deletable, then
// listing again to verify.
//
// Safety is decided in the plan, before anything is deleted: only assets
// tagged kiln:managed=true (and their untagged children) are considered,
// and of those only the ones this project owns (package ownership: its
// kiln:project tag and one of its use cases) may go — the others are
// listed as foreign; images that a channel manifest references are kept, with their
// snapshots, as are snapshots something else uses and assets of no known
// run; assets tagged kiln:retain=true (in any case) and stack resources with a Retain
// deletion policy are planned survivors; runs still in progress are left
// alone.
package assets
