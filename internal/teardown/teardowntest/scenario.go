package teardowntest

import (
	"context"
	"fmt"
	"sort"
)

// Scenario is a deployment like the notebook clusters a team tears down
// by hand from a checklist: one stack per unit, in deploy order, each with
// a versioned bucket, a container repository and a volume — the first
// also with a log group and an archive bucket its template retains — and
// around the stacks, tagged for the deployment: more buckets and
// repositories, snapshots, volumes, a log group and a user pool the
// project's rules keep (destroy.retain: [log-group, user-pool]), and a
// role. A neighbour deployment of the same project gets a stack, a
// snapshot and a log group of its own, which must survive.
type Scenario struct {
	Project, Deployment, Neighbour string
	// CostKey is the project's cost tag; each deployment's value is its
	// name.
	CostKey string
	// Units are the stacks' units, in deploy order.
	Units []string
	// Versions and Markers fill the first stack's bucket; the others get
	// a tenth of each.
	Versions, Markers int
	// Images go into each repository.
	Images int
	// Outside any stack.
	Buckets, Repositories, Snapshots, Volumes int
	// Protected gives the deployment's stacks termination protection, as
	// a deploy of a deployment with protect: true does.
	Protected bool
}

// Seeded says what a scenario made, as "type id" (teardowntest's
// Inventory names).
type Seeded struct {
	// Gone must be gone after the teardown; Kept must stay;
	// Neighbour's must all stay.
	Gone, Kept, Neighbour []string
	// Buckets are the deployment's buckets that go (for a late writer).
	Buckets []string
	// Resources counts the deployment's resources (stacks included).
	Resources int
}

// StackName is the name the stack unit kind gives a unit's stack.
func StackName(project, deployment, unit string) string {
	return "kiln-" + project + "-" + deployment + "-" + unit
}

// Seed makes the scenario.
func (a *AWS) Seed(ctx context.Context, s Scenario) (Seeded, error) {
	var out Seeded
	gone := func(typ, id string) { out.Gone = append(out.Gone, typ+" "+id) }
	kept := func(typ, id string) { out.Kept = append(out.Kept, typ+" "+id) }
	dep := s.Deployment
	for i, u := range s.Units {
		tags := Tags(s.Project, dep, u, s.CostKey, dep)
		bucket, repo := fmt.Sprintf("%s-%s-data", dep, u), fmt.Sprintf("%s/%s", dep, u)
		res := map[string]any{
			"Data": BucketResource(bucket, tags, false),
			"Repo": RepositoryResource(repo, tags),
			"Disk": VolumeResource(tags),
		}
		if i == 0 {
			res["Logs"] = LogGroupResource(fmt.Sprintf("/kiln/%s/%s", dep, u), true)
			res["Archive"] = BucketResource(fmt.Sprintf("%s-%s-archive", dep, u), tags, true)
			kept("log-group", fmt.Sprintf("/kiln/%s/%s", dep, u))
			kept("bucket", fmt.Sprintf("%s-%s-archive", dep, u))
		}
		stack := StackName(s.Project, dep, u)
		if err := a.stack(ctx, stack, tags, res, s.Protected); err != nil {
			return out, err
		}
		gone("stack", stack)
		gone("bucket", bucket)
		gone("repository", repo)
		out.Buckets = append(out.Buckets, bucket)
		versions, markers := s.Versions, s.Markers
		if i > 0 {
			versions, markers = versions/10, markers/10
		}
		if err := a.FillBucket(ctx, bucket, versions, markers); err != nil {
			return out, err
		}
		if i == 0 {
			if err := a.FillBucket(ctx, fmt.Sprintf("%s-%s-archive", dep, u), 5, 1); err != nil {
				return out, err
			}
		}
		if err := a.PushImages(ctx, repo, s.Images); err != nil {
			return out, err
		}
		out.Resources += 4 + 2*btoi(i == 0)
	}
	// The volumes of the stacks are listed by id; the test reads them
	// through the stacks, so they are counted in Resources only.
	tags := Tags(s.Project, dep, "", s.CostKey, dep)
	delete(tags, "kiln:unit")
	for i := range s.Buckets {
		b := fmt.Sprintf("%s-uploads-%d", dep, i)
		if err := a.Bucket(ctx, b, tags); err != nil {
			return out, err
		}
		if err := a.FillBucket(ctx, b, s.Versions/10, s.Markers/10); err != nil {
			return out, err
		}
		gone("bucket", b)
		out.Buckets = append(out.Buckets, b)
	}
	for i := range s.Repositories {
		r := fmt.Sprintf("%s/lambda-%d", dep, i)
		if err := a.Repository(ctx, r, tags); err != nil {
			return out, err
		}
		if err := a.PushImages(ctx, r, s.Images); err != nil {
			return out, err
		}
		gone("repository", r)
	}
	for range s.Volumes {
		v, err := a.Volume(ctx, tags)
		if err != nil {
			return out, err
		}
		gone("volume", v)
	}
	if s.Snapshots > 0 {
		src, err := a.Volume(ctx, nil) // not the deployment's: made by hand, left alone
		if err != nil {
			return out, err
		}
		out.Neighbour = append(out.Neighbour, "volume "+src)
		for range s.Snapshots {
			snap, err := a.Snapshot(ctx, src, tags)
			if err != nil {
				return out, err
			}
			gone("snapshot", snap)
		}
	}
	audit := "/kiln/" + dep + "/audit"
	if err := a.LogGroup(ctx, audit, tags); err != nil {
		return out, err
	}
	kept("log-group", audit)
	if _, err := a.UserPool(ctx, dep+"-users", tags); err != nil {
		return out, err
	}
	kept("user-pool", dep+"-users")
	if err := a.Role(ctx, dep+"-worker", tags); err != nil {
		return out, err
	}
	gone("role", dep+"-worker")
	out.Resources += s.Buckets + s.Repositories + s.Volumes + s.Snapshots + 3

	if n := s.Neighbour; n != "" {
		ntags := Tags(s.Project, n, "cluster", s.CostKey, n)
		stack := StackName(s.Project, n, "cluster")
		if err := a.Stack(ctx, stack, ntags, map[string]any{
			"Data": BucketResource(n+"-cluster-data", ntags, false),
			"Repo": RepositoryResource(n+"/cluster", ntags),
		}); err != nil {
			return out, err
		}
		if err := a.FillBucket(ctx, n+"-cluster-data", 20, 2); err != nil {
			return out, err
		}
		if err := a.PushImages(ctx, n+"/cluster", 2); err != nil {
			return out, err
		}
		v, err := a.Volume(ctx, ntags)
		if err != nil {
			return out, err
		}
		snap, err := a.Snapshot(ctx, v, ntags)
		if err != nil {
			return out, err
		}
		if err := a.LogGroup(ctx, "/kiln/"+n+"/audit", ntags); err != nil {
			return out, err
		}
		out.Neighbour = append(out.Neighbour, "stack "+stack, "bucket "+n+"-cluster-data", "repository "+n+"/cluster",
			"volume "+v, "snapshot "+snap, "log-group /kiln/"+n+"/audit")
	}
	for _, l := range [][]string{out.Gone, out.Kept, out.Neighbour} {
		sort.Strings(l)
	}
	return out, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
