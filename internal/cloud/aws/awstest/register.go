package awstest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// registerImage answers RegisterImage for an image registered from
// existing snapshots as EC2 does. moto makes up a new snapshot for each
// block device and forgets the ones asked for; the stub records which
// snapshot each device named, so that DescribeImages answers name it
// (patchRegistered) and DeleteSnapshot refuses it while the image is
// registered (refuseSnapshotInUse), as on EC2.
func (s *Stub) registerImage(w http.ResponseWriter, c Call) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if s.refuseTakenName(w, c, c.Form.Get("Name")) {
		return
	}
	status, out, err := s.ec2As(c.key(), c.Region, c.Form)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if status == http.StatusOK {
		var asked []string
		for n := 1; ; n++ {
			p := fmt.Sprintf("BlockDeviceMapping.%d.", n)
			if c.Form.Get(p+"DeviceName") == "" {
				break
			}
			asked = append(asked, c.Form.Get(p+"Ebs.SnapshotId"))
		}
		if m := imageIDRE.FindSubmatch(out); m != nil {
			_, desc, err := s.ec2As(c.key(), c.Region, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {string(m[1])}})
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			made := snapshotIDRE.FindAllSubmatch(desc, -1)
			s.mu.Lock()
			for i, sm := range made {
				if i < len(asked) && asked[i] != "" {
					s.registered[string(sm[1])] = registration{key: c.key(), image: string(m[1]), region: c.Region, snapshot: asked[i]}
				}
			}
			s.mu.Unlock()
		}
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(out)
}

// registration is a snapshot a registered image asked for, in place of
// the one moto made up.
type registration struct{ key, image, region, snapshot string }

// patchRegistered names, in a DescribeImages answer, the snapshots that
// registered images asked for instead of moto's. The caller holds s.mu.
func (s *Stub) patchRegistered(body []byte) []byte {
	for made, reg := range s.registered {
		body = bytes.ReplaceAll(body, []byte("<snapshotId>"+made+"</snapshotId>"), []byte("<snapshotId>"+reg.snapshot+"</snapshotId>"))
	}
	return body
}

// refuseSnapshotInUse answers DeleteSnapshot with InvalidSnapshot.InUse
// while an image registered from the snapshot exists.
func (s *Stub) refuseSnapshotInUse(w http.ResponseWriter, c Call) bool {
	id := c.Form.Get("SnapshotId")
	s.mu.Lock()
	var users []registration
	for _, reg := range s.registered {
		if reg.snapshot == id && reg.region == c.Region {
			users = append(users, reg)
		}
	}
	s.mu.Unlock()
	for _, reg := range users {
		_, out, err := s.ec2As(reg.key, c.Region, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {reg.image}})
		if err == nil && strings.Contains(string(out), "<imageId>"+reg.image+"</imageId>") && !strings.Contains(string(out), "<imageState>deregistered</imageState>") {
			writeError(w, c, http.StatusBadRequest, "InvalidSnapshot.InUse", fmt.Sprintf("The snapshot %s is currently in use by %s", id, reg.image))
			return true
		}
	}
	return false
}
