// Package awsunit provides the deployment unit kinds of the aws backend:
// Stack, a CloudFormation stack made from one of the project's templates
// through change sets, and Instance, EC2 instances booted from the
// deployment's image. Both implement deploy.UnitKind and pass its
// conformance suite (package unittest) against moto and the wire-format
// stub of package awstest.
//
// Names. A unit's stack is kiln-<project>-<deployment>-<unit>, its
// instances are named the same with their slot number; change sets and
// client tokens derive from Unit.Token, so every call, from this process or
// a later one, finds what an earlier one made.
//
// Tags. Everything is tagged at creation with Unit.Tags. A stack also
// carries kiln:token (the Unit.Token it is at) and kiln:template (the
// digest of its template); CloudFormation passes stack tags on to the
// resources that take tags, and where it does not (moto: S3 buckets, ECR
// repositories, log groups, instances made through change sets) Apply
// adds the missing ones to each resource it knows how to tag and reads
// them back.
//
// Secrets. A parameter that receives a secret input must be declared
// NoEcho in the template, or the unit is refused: CloudFormation would
// otherwise show the value to anyone who may describe the stack. Secret
// values appear in no plan, status, tag or error.
package awsunit
