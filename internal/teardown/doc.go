// Package teardown destroys a deployment: everything it made, in an order
// the cloud accepts, keeping what must be kept, and then proves that
// nothing else is left. It is what `kiln destroy DEP` and `kiln cleanup
// --orphans` (for personal deployments past their expiry) run.
//
// # What a teardown finds
//
// Everything by tags (kiln:project and kiln:deployment), never from the
// record alone, so that a crashed deploy, a unit removed from kiln.yaml or
// an earlier teardown killed half-way leave nothing it does not see:
//
//   - the units, through their kinds' Resources (a stack and its
//     resources, a VM, a process), and what of them may be kept (a
//     Keeper's Parts: a VM's disk, a process's data directory);
//   - what the backend's inventory lists (cloud.Inventory: snapshots,
//     volumes, instances, images... in cloud.DeleteOrder);
//   - what the backend's inventory does not (Leftovers: buckets,
//     repositories, log groups, user pools, roles on aws; the parts
//     earlier teardowns kept, locally).
//
// # The order
//
// Pre-destroy hooks; stop every unit's compute; empty the buckets (every
// version and delete marker) and repositories (every image) that go, so
// that a stack can delete them; keep what the project keeps of units that
// can keep parts; destroy the units in reverse dependency order (a unit
// whose Destroy fails — a stack in DELETE_FAILED — gets its buckets and
// repositories emptied again and one more try); then whatever is still
// found by tag, in dependency order: a type after the one before, the
// resources of a type — and the containers emptied — Concurrency at a
// time, as a teardown of hundreds of snapshots is bound by round trips.
// Last, verification: everything is
// listed again, by kiln:deployment and by the cost tag, through every
// lister and the account's tag index (each entry confirmed by its own
// service: the index returns resources deleted an hour ago), until nothing
// but the retained set is left or verify_timeout passes.
//
// # What it keeps
//
// Resources with a Retain deletion policy, tagged kiln:retain=true, or of a
// type destroy.retain names. The retained set is written to the
// deployment's record before anything is deleted — so that a rerun after a
// crash keeps it too, even once the stack that said so is gone — except a
// part a Keeper moves out of its unit, which enters the record where it
// ends up (recorded at its old place, a crash between the move and the
// record would leave the record naming a place that is gone). --purge-retained
// deletes them as well. A stack that would delete a resource the project
// keeps (no Retain policy in its template) is refused at the plan.
//
// # Crash safety
//
// Every action is a journaled step and a failpoint boundary. A teardown
// killed at any point is finished by running it again: the plan is made
// anew from what the tags show, the record (state destroying) names the
// run, whose hooks that already ran are not run again.
package teardown
