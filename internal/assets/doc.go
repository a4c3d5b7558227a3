// Package assets finds every resource kiln made, by its tags, in every
// region, and deletes what a cleanup plan says may go: in dependency order,
// in parallel across regions, retrying what is "not yet" deletable, then
// listing again to verify.
//
// Safety is decided in the plan, before anything is deleted: only assets
// tagged kiln:managed=true (and their untagged children) are considered;
// images that a channel manifest references are kept, with their
// snapshots; assets tagged kiln:retain=true and stack resources with a Retain
// deletion policy are planned survivors; runs still in progress are left
// alone.
package assets
