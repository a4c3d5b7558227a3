package report

import (
	"reflect"
	"slices"
)

// The schema names of the reports, one per command. A document's "schema"
// field holds its name; a change that breaks consumers gets a new version.
const (
	SchemaVersion          = "kiln.version/v1"
	SchemaInit             = "kiln.init/v1"
	SchemaValidate         = "kiln.validate/v1"
	SchemaManifestValidate = "kiln.manifest-validate/v1"
	SchemaManifestShow     = "kiln.manifest-show/v1"
	SchemaManifestDiff     = "kiln.manifest-diff/v1"
	SchemaRuns             = "kiln.runs/v1"
	SchemaBuild            = "kiln.build/v1"
	SchemaTest             = "kiln.test/v1"
	SchemaReplicate        = "kiln.replicate/v1"
	SchemaPublish          = "kiln.publish/v1"
	SchemaRelease          = "kiln.release/v1"
	SchemaSchedule         = "kiln.schedule/v1"
	SchemaAssets           = "kiln.assets/v1"
	SchemaCleanup          = "kiln.cleanup/v1"
	SchemaPrune            = "kiln.prune/v1"
	SchemaDrift            = "kiln.drift/v1"
	SchemaReconcile        = "kiln.reconcile/v1"
	SchemaPromote          = "kiln.promote/v1"
	SchemaRollback         = "kiln.rollback/v1"
	SchemaError            = "kiln.error/v1"
	SchemaIndex            = "kiln.index/v1"
	SchemaVerifyImage      = "kiln.verify-image/v1"
	SchemaDistribution     = "kiln.distribution/v1"
	SchemaAdopt            = "kiln.adopt/v1"
)

// A Kind is one kind of JSON document kiln prints.
type Kind struct {
	Schema  string       // its name, kiln.<command>/v1
	Command string       // the command that prints it, e.g. "kiln manifest diff"
	Stderr  bool         // printed on stderr (errors), not stdout
	Type    reflect.Type // the Go type it is encoded from
}

// kinds is the registry. Register a new command's report with one line.
var kinds = []Kind{
	{Schema: SchemaVersion, Command: "kiln version", Type: reflect.TypeFor[Version]()},
	{Schema: SchemaInit, Command: "kiln init", Type: reflect.TypeFor[Init]()},
	{Schema: SchemaValidate, Command: "kiln validate", Type: reflect.TypeFor[Validate]()},
	{Schema: SchemaManifestValidate, Command: "kiln manifest validate", Type: reflect.TypeFor[ManifestValidate]()},
	{Schema: SchemaManifestShow, Command: "kiln manifest show", Type: reflect.TypeFor[ManifestShow]()},
	{Schema: SchemaManifestDiff, Command: "kiln manifest diff", Type: reflect.TypeFor[ManifestDiff]()},
	{Schema: SchemaRuns, Command: "kiln runs", Type: reflect.TypeFor[Runs]()},
	{Schema: SchemaBuild, Command: "kiln build", Type: reflect.TypeFor[Build]()},
	{Schema: SchemaTest, Command: "kiln test", Type: reflect.TypeFor[Test]()},
	{Schema: SchemaReplicate, Command: "kiln replicate", Type: reflect.TypeFor[Replicate]()},
	{Schema: SchemaPublish, Command: "kiln publish", Type: reflect.TypeFor[Publish]()},
	{Schema: SchemaRelease, Command: "kiln release", Type: reflect.TypeFor[Release]()},
	{Schema: SchemaSchedule, Command: "kiln schedule", Type: reflect.TypeFor[Schedule]()},
	{Schema: SchemaAssets, Command: "kiln assets", Type: reflect.TypeFor[Assets]()},
	{Schema: SchemaCleanup, Command: "kiln cleanup", Type: reflect.TypeFor[Cleanup]()},
	{Schema: SchemaPrune, Command: "kiln prune", Type: reflect.TypeFor[Cleanup]()},
	{Schema: SchemaDrift, Command: "kiln drift", Type: reflect.TypeFor[Drift]()},
	{Schema: SchemaReconcile, Command: "kiln reconcile", Type: reflect.TypeFor[Reconcile]()},
	{Schema: SchemaPromote, Command: "kiln promote", Type: reflect.TypeFor[Promote]()},
	{Schema: SchemaRollback, Command: "kiln rollback", Type: reflect.TypeFor[Rollback]()},
	{Schema: SchemaIndex, Command: "kiln index", Type: reflect.TypeFor[Index]()},
	{Schema: SchemaVerifyImage, Command: "kiln verify --image", Type: reflect.TypeFor[VerifyImage]()},
	{Schema: SchemaDistribution, Command: "kiln distribution", Type: reflect.TypeFor[Distribution]()},
	{Schema: SchemaAdopt, Command: "kiln adopt", Type: reflect.TypeFor[Adopt]()},
	{Schema: SchemaError, Command: "any command, on stderr, with -o json", Stderr: true, Type: reflect.TypeFor[Error]()},
}

// Kinds returns every registered report kind.
func Kinds() []Kind { return slices.Clone(kinds) }

// Lookup returns the kind with the given schema name.
func Lookup(schema string) (Kind, bool) {
	i := slices.IndexFunc(kinds, func(k Kind) bool { return k.Schema == schema })
	if i < 0 {
		return Kind{}, false
	}
	return kinds[i], true
}
