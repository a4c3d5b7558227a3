package cdn

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
)

// Template is a CloudFormation template as JSON values.
type Template map[string]any

// JSON encodes the template, keys sorted.
func (t Template) JSON() []byte {
	b, err := json.MarshalIndent(map[string]any(t), "", "  ")
	if err != nil {
		panic(err) // maps, slices, strings and numbers only
	}
	return append(b, '\n')
}

type obj = map[string]any

func getAtt(res, attr string) obj { return obj{"Fn::GetAtt": []any{res, attr}} }
func ref(name string) obj         { return obj{"Ref": name} }

// cfnTags is a tag list as most resource types take it.
func (s Spec) cfnTags() []any {
	var out []any
	for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
		out = append(out, obj{"Key": k, "Value": s.Tags[k]})
	}
	return out
}

func visibility(metric string) obj {
	return obj{"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": metric}
}

// Managed CloudFront policies (ids are the same in every account).
const (
	cachingOptimized      = "658327ea-f89d-4fab-a63d-7e88639e58f6"
	securityHeadersPolicy = "67f7725c-6f97-4210-82d7-5512b31e9d03"
)

// FirewallTemplate is the firewall stack: the allow-list IP sets and the
// web ACL, in us-east-1.
func (s Spec) FirewallTemplate() Template {
	ipSet := func(version string, addrs []string) obj {
		if addrs == nil {
			addrs = []string{}
		}
		return obj{"Type": "AWS::WAFv2::IPSet", "Properties": obj{
			"Name":        s.WebACLName() + "-allow-" + map[string]string{"IPV4": "v4", "IPV6": "v6"}[version],
			"Description": "kiln: networks never limited nor challenged",
			"Scope":       "CLOUDFRONT", "IPAddressVersion": version, "Addresses": addrs, "Tags": s.cfnTags(),
		}}
	}
	allowed := obj{"OrStatement": obj{"Statements": []any{
		obj{"IPSetReferenceStatement": obj{"Arn": getAtt("AllowV4", "Arn")}},
		obj{"IPSetReferenceStatement": obj{"Arn": getAtt("AllowV6", "Arn")}},
	}}}
	rules := []any{
		// Allow-listed networks skip every other rule.
		obj{"Name": "allow-list", "Priority": 0, "Action": obj{"Allow": obj{}}, "Statement": allowed,
			"VisibilityConfig": visibility("allow-list")},
		// Everyone else: a budget of requests per window and address.
		obj{"Name": "rate-limit", "Priority": 1,
			"Action": obj{"Block": obj{"CustomResponse": obj{
				"ResponseCode":    429,
				"ResponseHeaders": []any{obj{"Name": "retry-after", "Value": strconv.Itoa(int(s.Window.Seconds()))}},
			}}},
			"Statement": obj{"RateBasedStatement": obj{
				"Limit": s.Requests, "EvaluationWindowSec": int(s.Window.Seconds()), "AggregateKeyType": "IP",
			}},
			"VisibilityConfig": visibility("rate-limit")},
	}
	if s.BrowserCheck != "none" {
		var cli []any
		for _, p := range s.CLIPaths {
			cli = append(cli, obj{"ByteMatchStatement": obj{
				"SearchString": p, "FieldToMatch": obj{"UriPath": obj{}}, "PositionalConstraint": "STARTS_WITH",
				"TextTransformations": []any{obj{"Priority": 0, "Type": "NONE"}},
			}})
		}
		onCLIPaths := cli[0].(obj)
		if len(cli) > 1 {
			onCLIPaths = obj{"OrStatement": obj{"Statements": cli}}
		}
		action := obj{"Captcha": obj{}}
		if s.BrowserCheck == "challenge" {
			action = obj{"Challenge": obj{}}
		}
		rules = append(rules, obj{"Name": "browser-check", "Priority": 2, "Action": action,
			"Statement":        obj{"NotStatement": obj{"Statement": onCLIPaths}},
			"VisibilityConfig": visibility("browser-check")})
	}
	return Template{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Description":              "kiln downloads of " + s.Project + ": the web application firewall in front of CloudFront",
		"Resources": obj{
			"AllowV4": ipSet("IPV4", s.AllowV4),
			"AllowV6": ipSet("IPV6", s.AllowV6),
			"WebACL": obj{"Type": "AWS::WAFv2::WebACL", "Properties": obj{
				"Name": s.WebACLName(), "Scope": "CLOUDFRONT",
				"Description":      "kiln: rate limit and browser check of the downloads of " + s.Project,
				"DefaultAction":    obj{"Allow": obj{}},
				"Rules":            rules,
				"VisibilityConfig": visibility(s.WebACLName()),
				"Tags":             s.cfnTags(),
			}},
		},
		"Outputs": obj{"WebACLArn": obj{"Value": getAtt("WebACL", "Arn")}},
	}
}

// SiteTemplate is the site stack: the bucket, CloudFront with origin
// access control, and the bucket policy that lets only that distribution
// read. The web ACL's ARN is a parameter: it lives in the firewall's
// stack, in another region.
func (s Spec) SiteTemplate() Template {
	bucketArn := "arn:aws:s3:::" + s.Bucket
	return Template{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Description":              "kiln downloads of " + s.Project + ": private bucket served by CloudFront",
		"Parameters": obj{"WebACLArn": obj{
			"Type": "String", "Description": "ARN of the web ACL (the firewall stack's output)",
			"AllowedPattern": `^arn:aws:wafv2:us-east-1:\d{12}:global/webacl/.+$`,
		}},
		"Resources": obj{
			"Bucket": obj{
				"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
				"Properties": obj{
					"BucketName":        s.Bucket,
					"OwnershipControls": obj{"Rules": []any{obj{"ObjectOwnership": "BucketOwnerEnforced"}}},
					"PublicAccessBlockConfiguration": obj{
						"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
					},
					"BucketEncryption": obj{"ServerSideEncryptionConfiguration": []any{obj{
						"ServerSideEncryptionByDefault": obj{"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": true,
					}}},
					"VersioningConfiguration": obj{"Status": "Enabled"},
					"LifecycleConfiguration": obj{"Rules": []any{
						// Files kiln removed (retired versions of daily
						// builds) stay this many days, then go.
						obj{"Id": "retired-files", "Status": "Enabled",
							"NoncurrentVersionExpiration": obj{"NoncurrentDays": s.NoncurrentDays}},
						obj{"Id": "delete-markers", "Status": "Enabled", "ExpiredObjectDeleteMarker": true},
						obj{"Id": "unfinished-uploads", "Status": "Enabled",
							"AbortIncompleteMultipartUpload": obj{"DaysAfterInitiation": 1}},
					}},
					"Tags": s.cfnTags(),
				},
			},
			"OriginAccessControl": obj{"Type": "AWS::CloudFront::OriginAccessControl", "Properties": obj{
				"OriginAccessControlConfig": obj{
					"Name": s.Project + "-downloads", "Description": "kiln: CloudFront signs its requests to the downloads bucket",
					"OriginAccessControlOriginType": "s3", "SigningBehavior": "always", "SigningProtocol": "sigv4",
				},
			}},
			"Distribution": obj{"Type": "AWS::CloudFront::Distribution", "Properties": obj{
				"DistributionConfig": obj{
					"Enabled": true, "Comment": "kiln downloads of " + s.Project,
					"HttpVersion": "http2and3", "IPV6Enabled": true, "PriceClass": s.PriceClass,
					"WebACLId": ref("WebACLArn"),
					"Origins": []any{obj{
						"Id": "bucket", "DomainName": getAtt("Bucket", "RegionalDomainName"),
						"S3OriginConfig":        obj{"OriginAccessIdentity": ""},
						"OriginAccessControlId": getAtt("OriginAccessControl", "Id"),
					}},
					"DefaultCacheBehavior": obj{
						"TargetOriginId": "bucket", "ViewerProtocolPolicy": "redirect-to-https",
						"AllowedMethods": []any{"GET", "HEAD"}, "CachedMethods": []any{"GET", "HEAD"},
						"CachePolicyId": cachingOptimized, "ResponseHeadersPolicyId": securityHeadersPolicy,
						"Compress": false,
					},
					"ViewerCertificate": obj{"CloudFrontDefaultCertificate": true},
				},
				"Tags": s.cfnTags(),
			}},
			"BucketPolicy": obj{"Type": "AWS::S3::BucketPolicy", "Properties": obj{
				"Bucket": ref("Bucket"),
				"PolicyDocument": obj{"Version": "2012-10-17", "Statement": []any{
					obj{"Sid": "OnlyThisDistributionReads", "Effect": "Allow",
						"Principal": obj{"Service": "cloudfront.amazonaws.com"},
						"Action":    "s3:GetObject", "Resource": bucketArn + "/*",
						"Condition": obj{"StringEquals": obj{"AWS:SourceArn": obj{
							"Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}",
						}}}},
					obj{"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
						"Resource":  []any{bucketArn, bucketArn + "/*"},
						"Condition": obj{"Bool": obj{"aws:SecureTransport": "false"}}},
				}},
			}},
		},
		"Outputs": obj{
			"BucketName":     obj{"Value": ref("Bucket")},
			"DistributionId": obj{"Value": ref("Distribution")},
			"DomainName":     obj{"Value": getAtt("Distribution", "DomainName")},
		},
	}
}
