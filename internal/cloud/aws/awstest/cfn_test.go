package awstest

import (
	"strings"
	"testing"
)

func TestEachMemberAndSetElement(t *testing.T) {
	doc := `<R><Stacks><member><StackId>a</StackId><Parameters><member><ParameterKey>K</ParameterKey></member></Parameters>` +
		`<StackStatus>UPDATE_COMPLETE</StackStatus><Tags/></member><member><StackId>b</StackId><StackStatus>CREATE_COMPLETE</StackStatus>` +
		`<EnableTerminationProtection>false</EnableTerminationProtection></member></Stacks><Meta/></R>`
	var seen []string
	out := eachMember([]byte(doc), "Stacks", func(m []byte) []byte {
		seen = append(seen, string(m[:len("<member><StackId>a")]))
		if strings.Contains(string(m), "<StackId>a<") {
			m = setElement(m, "StackStatus", "DELETE_FAILED")
			m = setRaw(m, "Tags", "<member><Key>k</Key></member>")
			m = setElement(m, "StackStatusReason", "x < y")
		} else {
			m = setElement(m, "EnableTerminationProtection", "true")
			m = removeElement(m, "StackStatus")
		}
		return m
	})
	want := `<R><Stacks><member><StackId>a</StackId><Parameters><member><ParameterKey>K</ParameterKey></member></Parameters>` +
		`<StackStatus>DELETE_FAILED</StackStatus><Tags><member><Key>k</Key></member></Tags><StackStatusReason>x &lt; y</StackStatusReason></member>` +
		`<member><StackId>b</StackId><EnableTerminationProtection>true</EnableTerminationProtection></member></Stacks><Meta/></R>`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if len(seen) != 2 {
		t.Errorf("members seen: %q", seen)
	}
}

func TestRefusedBucket(t *testing.T) {
	for body, want := range map[string]bool{
		"Resources:\n  B: {Type: AWS::S3::Bucket, Properties: {BucketName: Bad_Name}}\n":  true,
		"Resources:\n  B: {Type: AWS::S3::Bucket, Properties: {BucketName: good-name}}\n": false,
		"Resources:\n  B: {Type: AWS::S3::Bucket, Properties: {BucketName: !Ref X}}\n":    false,
		"Resources:\n  B: {Type: AWS::S3::Bucket}\n":                                      false,
	} {
		if _, _, got := refusedBucket(body); got != want {
			t.Errorf("refusedBucket(%q) = %v, want %v", body, got, want)
		}
	}
}

func TestMaskParams(t *testing.T) {
	body := "Parameters:\n  Token: {Type: String, NoEcho: true}\n  Plain: {Type: String, NoEcho: false}\n  Other: {Type: String}\n" +
		"Resources:\n  P: {Type: AWS::SSM::Parameter, Properties: {Value: !Ref Plain}}\n"
	noEcho := noEchoParams(body)
	if len(noEcho) != 1 || !noEcho["Token"] {
		t.Fatalf("noEchoParams = %v, want Token", noEcho)
	}
	doc := `<R><Stacks><member><Parameters><member><ParameterKey>Plain</ParameterKey><ParameterValue>one</ParameterValue></member>` +
		`<member><ParameterKey>Token</ParameterKey><ParameterValue>s3cret</ParameterValue></member></Parameters><StackId>a</StackId></member></Stacks></R>`
	got := string(eachMember([]byte(doc), "Stacks", func(m []byte) []byte { return maskParams(m, noEcho) }))
	want := strings.Replace(doc, "s3cret", "****", 1)
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
