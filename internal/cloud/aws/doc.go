// Package aws is kiln's AWS backend: cloud.Backend (plus PublicAccessChecker,
// Parameters and Exporter) on aws-sdk-go-v2.
//
// It is one facade split by concern, after mantle's platform/api/aws:
// images.go lists and describes AMIs, copy.go replicates them, publish.go
// sets launch permissions and deprecation, build.go and buildres.go make
// candidates from a recipe on a temporary instance (or CloudFormation stack),
// imagetest.go boot-tests them, inventory.go and deleteasset.go find and
// remove everything kiln made, params.go and export.go hold the optional
// publish helpers. errors.go classifies AWS error codes into cloud's error
// classes at this boundary, so the core decides with errors.Is.
//
// Credentials come from the SDK's standard chain (environment, shared
// config and profile, SSO, instance role); endpoints from its standard
// overrides (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2, ...), which is how the
// tests point it at moto. Every create call is idempotent: it first looks
// for what an earlier attempt with the same token made (by the kiln:token
// tag or a name derived from the token) and passes the token as the
// ClientToken where the API has one. Questions that do not depend on each
// other (those look-ups, an image and its launch permissions) are asked at
// once, so that each costs one round trip to the endpoint, not one each.
//
// Beyond cloud's contract, BuildDeferCleanup and TestImageDeferCleanup let
// `kiln release` overlap removing a build's or test's temporary resources
// with its later phases.
package aws
