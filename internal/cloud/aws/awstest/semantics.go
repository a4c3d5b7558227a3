package awstest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
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
//
// fresh, when set, brings a repeat's answer up to date: EC2 answers with
// the resource as it is now (an instance terminated since is terminated).
func (s *Stub) idempotent(w http.ResponseWriter, c Call, fresh func([]byte) ([]byte, error), fn func() (int, []byte, error)) {
	token := c.Form.Get("ClientToken")
	key := c.key() + "|" + c.Region + "|" + c.Action + "|" + token
	if token != "" {
		s.mu.Lock()
		body, ok := s.tokens[key]
		s.mu.Unlock()
		if ok {
			if fresh != nil {
				var err error
				if body, err = fresh(body); err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
			}
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
// taken name, or moto's copy. A new copy gets, before the answer, what EC2
// gives it and moto does not: the call's TagSpecifications on the copy and
// its snapshots, and, for a copy of a registered image, what the stub shows
// of its source (architecture, ENA, root device).
func (s *Stub) copyImage(w http.ResponseWriter, c Call) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	specs := tagSpecs(c.Form)
	s.mu.Lock()
	if s.dropCopyTags {
		specs = nil
	}
	s.mu.Unlock()
	s.idempotent(w, c, nil, func() (int, []byte, error) {
		if id, taken, err := s.imageNameTaken(c.key(), c.Region, c.Form.Get("Name")); err != nil {
			return 0, nil, err
		} else if taken {
			writeError(w, c, http.StatusBadRequest, "InvalidAMIName.Duplicate", fmt.Sprintf("AMI name %s is already in use by AMI %s", c.Form.Get("Name"), id))
			return -1, nil, nil
		}
		status, out, err := s.ec2As(c.key(), c.Region, withoutTagSpecs(c.Form, nil))
		if err != nil || status != http.StatusOK {
			return status, out, err
		}
		if m := imageIDRE.FindSubmatch(out); m != nil {
			id := string(m[1])
			s.mu.Lock()
			if src, ok := s.images[c.Form.Get("SourceImageId")]; ok {
				src.mapping = ""
				s.images[id] = src
			}
			s.mu.Unlock()
			if err := s.tagImageAndSnapshots(c.key(), c.Region, id, specs["image"], specs["snapshot"]); err != nil {
				return 0, nil, err
			}
		}
		return status, out, nil
	})
}

// runInstances serves RunInstances with its client token honoured; a
// repeat shows each instance's state now.
func (s *Stub) runInstances(w http.ResponseWriter, c Call) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	fresh := func(body []byte) ([]byte, error) { return s.currentStates(c, body) }
	s.idempotent(w, c, fresh, func() (int, []byte, error) { return s.ec2As(c.key(), c.Region, c.Form) })
}

// instanceStateRE finds an instance's state in an EC2 answer
// (instanceIDRE, in accounts.go, its id).
var instanceStateRE = regexp.MustCompile(`(?s)<instanceState>.*?</instanceState>`)

// currentStates replaces, in a RunInstances answer, each instance's
// instanceState with the one DescribeInstances gives now.
func (s *Stub) currentStates(c Call, body []byte) ([]byte, error) {
	text := string(body)
	for _, m := range instanceIDRE.FindAllStringSubmatch(text, -1) {
		id := m[1]
		status, out, err := s.ec2As(c.key(), c.Region, url.Values{"Action": {"DescribeInstances"}, "InstanceId.1": {id}})
		if err != nil {
			return nil, err
		}
		now := instanceStateRE.Find(out)
		if status != http.StatusOK || now == nil {
			continue // moto forgot it: leave the first answer
		}
		at := strings.Index(text, m[0])
		loc := instanceStateRE.FindStringIndex(text[at:])
		if loc == nil {
			continue
		}
		text = text[:at+loc[0]] + string(now) + text[at+loc[1]:]
	}
	return []byte(text), nil
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
