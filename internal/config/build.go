package config

import (
	"fmt"
	"strings"
)

// Build says how a use case's candidate is made on the aws backend. The
// local backend always builds the disk on this machine and takes none of
// it.
type Build struct {
	// Method is "instance" (the default): provision a temporary instance
	// started from base.ami (or name_filter, ssm_parameter) and make an
	// image of it; or "upload": build the disk on this machine with the
	// local builder (base.suite, base.packages, the same provisioning) and
	// write it straight into an EBS snapshot in every target region.
	Method string `yaml:"method"`
	// Disk, with method upload, is a raw disk image to upload as it is,
	// instead of one built from the recipe (a disk another tool made).
	Disk string `yaml:"disk"`
}

// Build methods.
const (
	BuildInstance = "instance"
	BuildUpload   = "upload"
)

// Default settings of the aws backend's builds.
const (
	defaultUploadConcurrency = 64
	maxUploadConcurrency     = 1024
)

// applyBuildDefaults fills in the build settings the document left out.
func applyBuildDefaults(c *Config, d *decoder) {
	if c.Backend.Type == "aws" {
		if !d.isSet("backend.aws.upload_concurrency") {
			c.Backend.AWS.UploadConcurrency = defaultUploadConcurrency
		}
		for _, u := range c.UseCases {
			if u.Build.Method == "" {
				u.Build.Method = BuildInstance
			}
			if u.Build.Method == BuildUpload && u.Build.Disk == "" && u.Base.Suite == "" {
				u.Base.Suite = defaultSuite
			}
		}
	}
}

// checkBuild checks a use case's build settings.
func (k *checker) checkBuild(p string, u *UseCase) {
	b := u.Build
	if k.c.Backend.Type != "aws" {
		if b.Method != "" {
			k.errorf(p+".method", "build.method is for the aws backend; the local backend builds every disk on this machine")
		}
		if b.Disk != "" {
			k.errorf(p+".disk", "build.disk is for the aws backend (with method upload)")
		}
		return
	}
	switch b.Method {
	case BuildInstance:
		if b.Disk != "" {
			k.errorf(p+".disk", "build.disk needs method upload; with method instance the disk is the build instance's")
		}
		return
	case BuildUpload:
	default:
		k.errorf(p+".method", "unknown build method %q; allowed: instance (provision a temporary instance), upload (build the disk here and upload it)", b.Method)
		return
	}
	if b.Disk != "" {
		k.checkFile(p+".disk", b.Disk, "disk", false)
		var set []string
		if len(u.Provision) > 0 {
			set = append(set, "provision")
		}
		base := u.Base
		if base.Suite != "" || len(base.Packages) > 0 || base.AMI != "" || base.NameFilter != "" || base.SSMParameter != "" || base.Owner != "" {
			set = append(set, "base")
		}
		if len(set) > 0 {
			k.errorf(p+".disk", "a given disk is uploaded as it is; remove %s from the use case", strings.Join(set, " and "))
		}
		return
	}
	for _, a := range u.Architectures {
		if a != "x86_64" {
			k.errorf(p+".method", "method upload builds the disk with the local builder, which makes x86_64 disks only (architecture %s); use method instance or give build.disk", a)
		}
	}
	base := u.Base
	for _, f := range []struct{ name, value string }{{"ami", base.AMI}, {"name_filter", base.NameFilter}, {"ssm_parameter", base.SSMParameter}, {"owner", base.Owner}} {
		if f.value != "" {
			k.errorf(joinPath(strings.TrimSuffix(p, ".build")+".base", f.name), "method upload builds from base.suite and base.packages on this machine; %s is for method instance", f.name)
		}
	}
}

// checkAWSBuild checks the aws settings of staging and uploads, and what
// secret variables need of them.
func (k *checker) checkAWSBuild() {
	a := k.c.Backend.AWS
	const p = "backend.aws"
	if a.Bucket != "" && !bucketRE.MatchString(a.Bucket) {
		k.errorf(p+".bucket", "%q is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and dashes)", a.Bucket)
	}
	if a.UploadConcurrency < 1 || a.UploadConcurrency > maxUploadConcurrency {
		k.errorf(p+".upload_concurrency", "%d is out of range; allowed: 1 to %d", a.UploadConcurrency, maxUploadConcurrency)
	}
	if a.Bucket != "" {
		return
	}
	for _, name := range k.c.VariableNames() {
		if !k.c.Variables[name].Secret {
			continue
		}
		for _, uc := range k.c.UseCaseNames() {
			if k.c.UseCases[uc].Build.Method == BuildInstance {
				k.errorf(joinPath("variables", name)+".secret", "%s", fmt.Sprintf(
					"use case %q builds on an instance, which gets its provisioning from user data unless backend.aws.bucket stages it; user data is readable by anyone who may describe the instance, so secret variables need backend.aws.bucket", uc))
				return
			}
		}
	}
}
