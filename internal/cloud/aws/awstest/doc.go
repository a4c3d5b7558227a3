// Package awstest runs the aws backend's tests against moto, the AWS API
// emulator, and fills in what moto lacks.
//
// Moto is a real server process (moto_server), started once per test binary
// and reset between tests. In front of it the package puts two HTTP
// servers of its own:
//
//   - Stub answers the EC2 actions moto 5.2 does not implement, with AWS's
//     own query-protocol XML (image deprecation, image block public access,
//     ExportImage and its tasks, console output with a chosen text), adds
//     what moto drops (snapshot tags at CreateImage, deprecation times in
//     DescribeImages), injects DependencyViolation answers on request, and
//     forwards everything else to moto unchanged. Its CloudFormation
//     overlay (cfn.go) ties change sets to their stacks, enforces
//     termination protection, masks NoEcho parameters and, with
//     EmulateStackFailures, fails the create of a stack S3 would refuse
//     and the delete of a stack whose bucket still holds objects
//     (DELETE_FAILED with the reason). For teardowns (teardown.go) it
//     runs a test's late writer at each stack delete and lists stale
//     entries in the tag index.
//   - Faults adds latency and answers a seeded, reproducible fraction of
//     requests with throttling errors or bare 503s, in the protocol of the
//     service asked, and fails chosen calls on request.
//
// The backend reaches the front server only through AWS_ENDPOINT_URL (see
// Env), exactly as it would reach any other endpoint.
package awstest
