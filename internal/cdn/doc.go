// Package cdn describes and deploys the aws side of kiln's downloads as
// two CloudFormation stacks, both tagged with the project, its cost tag
// and kiln:retain=true (cleanup never touches them):
//
//   - the firewall, in us-east-1 as CloudFront requires: an AWS WAF web
//     ACL whose first rule lets an allow-list of networks through, whose
//     second blocks a client (an address) over the rate limit with 429,
//     and whose third asks browsers outside the allow-list for a CAPTCHA
//     or challenge — never on the paths command-line clients (curl,
//     wget, lxc) download from, which cannot solve one;
//   - the site, in the bucket's region: a private bucket (owner-enforced,
//     public access blocked, encrypted, versioned, with a lifecycle for
//     retired files) that only CloudFront reads, through origin access
//     control and a bucket policy bound to that one distribution, which
//     the web ACL guards.
//
// Plan creates a change set per stack (with an explicit type: CREATE for
// a new stack, UPDATE for an existing one) and describes it; Deploy
// executes them, the firewall first, since the site needs the web ACL's
// ARN, and reads back the web ACL it made.
package cdn
