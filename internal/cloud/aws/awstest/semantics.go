package awstest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
)

// EC2 semantics moto lacks and kiln's convergence relies on, served the way
// EC2 behaves, each in the account the caller acts in (its access key):
//
//   - AMI names are unique per account and region: CreateImage, CopyImage
//     and RegisterImage with a name in use fail with
//     InvalidAMIName.Duplicate (moto makes a second image of the name);
//   - a CopyImage or RunInstances repeated with the same ClientToken
//     returns what the first call made (moto ignores client tokens);
//   - DeleteKeyPair by KeyPairId deletes that key pair (moto deletes only by
//     name and answers success to an id);
//   - creates are serialized, so that two concurrent calls see each other
//     as EC2's own consistency would make them (moto checks names and
//     inserts without a lock).

// answer writes a query-protocol answer.
func answer(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(body)
}

// imageNameTaken asks moto whether the account the access key key acts
// in has an image called name in region, and which.
func (s *Stub) imageNameTaken(key, region, name string) (string, bool, error) {
	if name == "" {
		return "", false, nil
	}
	status, out, err := s.ec2As(key, region, url.Values{"Action": {"DescribeImages"}, "Owner.1": {"self"},
		"Filter.1.Name": {"name"}, "Filter.1.Value.1": {name}})
	if err != nil {
		return "", false, err
	}
	if status != http.StatusOK {
		return "", false, fmt.Errorf("stub: DescribeImages by name answered %d: %s", status, out)
	}
	for _, m := range imageStateFullRE.FindAllSubmatch(out, -1) {
		if string(m[2]) != "deregistered" {
			return string(m[1]), true, nil
		}
	}
	return "", false, nil
}

var imageStateFullRE = regexp.MustCompile(`<imageId>(ami-[0-9a-zA-Z]+)</imageId>\s*<imageState>([a-z]+)</imageState>`)

// refuseTakenName answers InvalidAMIName.Duplicate when name is in use.
func (s *Stub) refuseTakenName(w http.ResponseWriter, c Call, name string) bool {
	id, taken, err := s.imageNameTaken(c.key(), c.Region, name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return true
	}
	if taken {
		writeError(w, c, http.StatusBadRequest, "InvalidAMIName.Duplicate", fmt.Sprintf("AMI name %s is already in use by AMI %s", name, id))
		return true
	}
	return false
}

// idempotent serves a create call with a ClientToken: the first call's
// answer for every repeat of the token in the caller's account and the
// region, as EC2 does; the call itself goes to moto as fn decides. The
// caller holds s.createMu.
func (s *Stub) idempotent(w http.ResponseWriter, c Call, fn func() (int, []byte, error)) {
	token := c.Form.Get("ClientToken")
	key := c.key() + "|" + c.Region + "|" + c.Action + "|" + token
	if token != "" {
		s.mu.Lock()
		body, ok := s.tokens[key]
		s.mu.Unlock()
		if ok {
			answer(w, http.StatusOK, body)
			return
		}
	}
	status, out, err := fn()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if status < 0 {
		return // fn answered itself
	}
	if status == http.StatusOK && token != "" {
		s.mu.Lock()
		s.tokens[key] = out
		s.mu.Unlock()
	}
	answer(w, status, out)
}

// copyImage serves CopyImage: the token's earlier copy, or a refusal of a
// taken name, or moto's copy.
func (s *Stub) copyImage(w http.ResponseWriter, c Call) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	s.idempotent(w, c, func() (int, []byte, error) {
		if id, taken, err := s.imageNameTaken(c.key(), c.Region, c.Form.Get("Name")); err != nil {
			return 0, nil, err
		} else if taken {
			writeError(w, c, http.StatusBadRequest, "InvalidAMIName.Duplicate", fmt.Sprintf("AMI name %s is already in use by AMI %s", c.Form.Get("Name"), id))
			return -1, nil, nil
		}
		return s.ec2As(c.key(), c.Region, c.Form)
	})
}

// runInstances serves RunInstances with its client token honoured.
func (s *Stub) runInstances(w http.ResponseWriter, c Call) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	s.idempotent(w, c, func() (int, []byte, error) { return s.ec2As(c.key(), c.Region, c.Form) })
}

// createKeyPair passes CreateKeyPair on, one at a time, so that moto's
// duplicate check holds under concurrent calls.
func (s *Stub) createKeyPair(w http.ResponseWriter, c Call) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	status, out, err := s.ec2As(c.key(), c.Region, c.Form)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	answer(w, status, out)
}

// keyPairs is the part of a DescribeKeyPairs answer the stub reads.
type keyPairs struct {
	Items []struct {
		ID   string `xml:"keyPairId"`
		Name string `xml:"keyName"`
	} `xml:"keySet>item"`
}

// deleteKeyPair serves DeleteKeyPair by KeyPairId: the key pair of that id
// is deleted by its name; an id that is gone deletes nothing.
func (s *Stub) deleteKeyPair(w http.ResponseWriter, c Call) bool {
	id := c.Form.Get("KeyPairId")
	if id == "" || c.Form.Get("KeyName") != "" {
		return false
	}
	s.createMu.Lock()
	defer s.createMu.Unlock()
	status, out, err := s.ec2As(c.key(), c.Region, url.Values{"Action": {"DescribeKeyPairs"}})
	if err != nil || status != http.StatusOK {
		http.Error(w, fmt.Sprintf("stub: describe key pairs: %v %s", err, out), http.StatusBadGateway)
		return true
	}
	var kps keyPairs
	if err := xml.Unmarshal(out, &kps); err != nil {
		http.Error(w, "stub: read key pairs: "+err.Error(), http.StatusBadGateway)
		return true
	}
	name := ""
	for _, kp := range kps.Items {
		if kp.ID == id {
			name = kp.Name
		}
	}
	if name == "" {
		writeXML(w, returnResponse{XMLName: xml.Name{Local: "DeleteKeyPairResponse"}, XMLNS: ec2NS, RequestID: requestID(), Return: true})
		return true
	}
	status, out, err = s.ec2As(c.key(), c.Region, url.Values{"Action": {"DeleteKeyPair"}, "KeyName": {name}})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return true
	}
	answer(w, status, out)
	return true
}
