package awstest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// moto keeps every account's images apart, as AWS does, but its CopyImage
// looks for the source only in the caller's own account: an image another
// account shared cannot be copied (InvalidAMIID.NotFound). The stub serves
// that case as AWS does — after checking that the owner shared the image
// and its snapshots with the caller — by making the copy in the caller's
// account and destination region from an instance of the source, with the
// name and description asked for, and honouring the client token. Like
// moto's own copies, it ignores TagSpecifications (kiln tags afterwards)
// and the copy is x86_64.

// accessKeyRE finds the access key in a SigV4 Authorization header.
var accessKeyRE = regexp.MustCompile(`Credential=([^/]+)/`)

// key is the access key the stub's own requests for c sign with: c's, so
// they act in the caller's account, or the default account's.
func (c Call) key() string {
	if c.Key == "" {
		return "awstest"
	}
	return c.Key
}

// ec2As sends an EC2 query request to moto as the caller whose access key
// signed r (moto tells accounts apart by access key and checks no
// signature).
func (s *Stub) ec2As(key, region string, params url.Values) (int, []byte, error) {
	params.Set("Version", "2016-11-15")
	return s.query(key, region, "ec2", params)
}

func (s *Stub) query(key, region, service string, params url.Values) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, s.target+"/", strings.NewReader(params.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+key+"/20260101/"+region+"/"+service+"/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

var (
	accountRE    = regexp.MustCompile(`<Account>(\d{12})</Account>`)
	ownerIDRE    = regexp.MustCompile(`<imageOwnerId>(\d{12})</imageOwnerId>`)
	instanceIDRE = regexp.MustCompile(`<instanceId>(i-[0-9a-z]+)</instanceId>`)
)

// callerAccount asks moto which account key acts as.
func (s *Stub) callerAccount(key, region string) (string, error) {
	_, out, err := s.query(key, region, "sts", url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}})
	if err != nil {
		return "", err
	}
	m := accountRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("stub: no account in GetCallerIdentity's answer: %s", out)
	}
	return string(m[1]), nil
}

// copyShared serves CopyImage of an image another account shared with the
// caller; it reports false, having answered nothing, for every other
// CopyImage (moto's own serves those).
func (s *Stub) copyShared(w http.ResponseWriter, r *http.Request, c Call) bool {
	key, src, srcRegion := c.key(), c.Form.Get("SourceImageId"), c.Form.Get("SourceRegion")
	if _, out, err := s.ec2As(key, srcRegion, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {src}}); err != nil || strings.Contains(string(out), "<imageId>"+src+"</imageId>") {
		return false // the caller's own image, or moto is unreachable: moto answers
	}
	caller, err := s.callerAccount(key, c.Region)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return true
	}
	// The owner is moto's default account, the one the stub's own calls use.
	_, desc, err := s.ec2(srcRegion, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {src}})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return true
	}
	if !strings.Contains(string(desc), "<imageId>"+src+"</imageId>") || ownerIDRE.FindSubmatch(desc) == nil {
		return false // no such image anywhere: moto's NotFound
	}
	notShared := func(what string) bool {
		writeError(w, c, http.StatusBadRequest, "InvalidAMIID.NotFound",
			fmt.Sprintf("The image id '[%s]' does not exist or %s is not shared with account %s", src, what, caller))
		return true
	}
	_, perm, err := s.ec2(srcRegion, url.Values{"Action": {"DescribeImageAttribute"}, "ImageId": {src}, "Attribute": {"launchPermission"}})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return true
	}
	if !strings.Contains(string(perm), "<userId>"+caller+"</userId>") && !strings.Contains(string(perm), "<group>all</group>") {
		return notShared("it")
	}
	for _, sm := range snapshotIDRE.FindAllSubmatch(desc, -1) {
		_, sp, err := s.ec2(srcRegion, url.Values{"Action": {"DescribeSnapshotAttribute"}, "SnapshotId": {string(sm[1])}, "Attribute": {"createVolumePermission"}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		if !strings.Contains(string(sp), "<userId>"+caller+"</userId>") {
			writeError(w, c, http.StatusBadRequest, "AuthFailure",
				fmt.Sprintf("Not authorized for the snapshot %s of image %s: it is not shared with account %s", sm[1], src, caller))
			return true
		}
	}

	token := caller + "/" + c.Region + "/" + c.Form.Get("ClientToken")
	s.mu.Lock()
	id, done := s.copyTokens[token]
	s.mu.Unlock()
	if !done || c.Form.Get("ClientToken") == "" {
		if id, err = s.copyInto(key, c); err != nil {
			http.Error(w, "stub: cross-account copy: "+err.Error(), http.StatusBadGateway)
			return true
		}
		s.mu.Lock()
		s.copyTokens[token] = id
		s.mu.Unlock()
	}
	writeXML(w, copyImageResponse{XMLNS: ec2NS, RequestID: requestID(), ImageID: id})
	return true
}

// copyInto makes the copy in the caller's account: an instance of the
// source image, an image of it, the instance gone again.
func (s *Stub) copyInto(key string, c Call) (string, error) {
	st, out, err := s.ec2As(key, c.Region, url.Values{
		"Action": {"RunInstances"}, "ImageId": {c.Form.Get("SourceImageId")}, "InstanceType": {"t3.micro"},
		"MinCount": {"1"}, "MaxCount": {"1"},
	})
	if err != nil || st != http.StatusOK {
		return "", fmt.Errorf("run instance: %v %s", err, out)
	}
	inst := instanceIDRE.FindSubmatch(out)
	if inst == nil {
		return "", fmt.Errorf("no instance in RunInstances' answer")
	}
	params := url.Values{"Action": {"CreateImage"}, "InstanceId": {string(inst[1])}, "Name": {c.Form.Get("Name")}}
	if d := c.Form.Get("Description"); d != "" {
		params.Set("Description", d)
	}
	st, out, err = s.ec2As(key, c.Region, params)
	if err != nil || st != http.StatusOK {
		return "", fmt.Errorf("create image: %v %s", err, out)
	}
	img := imageIDRE.FindSubmatch(out)
	if img == nil {
		return "", fmt.Errorf("no image in CreateImage's answer")
	}
	if st, out, err := s.ec2As(key, c.Region, url.Values{"Action": {"TerminateInstances"}, "InstanceId.1": {string(inst[1])}}); err != nil || st != http.StatusOK {
		return "", fmt.Errorf("terminate instance: %v %s", err, out)
	}
	return string(img[1]), nil
}

type copyImageResponse struct {
	XMLName   xml.Name `xml:"CopyImageResponse"`
	XMLNS     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	ImageID   string   `xml:"imageId"`
}

// AccountConfig is an SDK config acting as account in region at endpoint
// (moto): the credentials of a role assumed there, as kiln's
// publish_accounts get them. For tests' own checks and setup.
func AccountConfig(t testing.TB, endpoint, region, account string) aws.Config {
	t.Helper()
	out, err := sts.NewFromConfig(Config(endpoint, region)).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::" + account + ":role/awstest"),
		RoleSessionName: aws.String("awstest"),
	})
	if err != nil {
		t.Fatalf("assume a role in account %s: %v", account, err)
	}
	cr := out.Credentials
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken)),
		BaseEndpoint: aws.String(endpoint),
	}
}
