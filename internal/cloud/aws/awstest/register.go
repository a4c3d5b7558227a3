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
// block device and forgets the ones asked for, and ignores the
// architecture, ENA support and the tags; the stub applies the tags,
// records which snapshot each device named, so that DescribeImages answers
// name it (patchRegistered) and DeleteSnapshot refuses it while the image
// is registered (refuseSnapshotInUse), and shows the image as registered
// (patchImageRegs: mapping, root device, architecture, ENA), as on EC2.
func (s *Stub) registerImage(w http.ResponseWriter, c Call) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if s.refuseTakenName(w, c, c.Form.Get("Name")) {
		return
	}
	imageTags := tagSpecs(c.Form)["image"]
	status, out, err := s.ec2As(c.key(), c.Region, withoutTagSpecs(c.Form, nil))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if status == http.StatusOK {
		m := imageIDRE.FindSubmatch(out)
		if m == nil {
			http.Error(w, "stub: no image id in moto's RegisterImage answer", http.StatusBadGateway)
			return
		}
		id := string(m[1])
		if len(imageTags) > 0 {
			tag := url.Values{"Action": {"CreateTags"}, "ResourceId.1": {id}}
			for i, k := range sortedKeys(imageTags) {
				tag.Set(fmt.Sprintf("Tag.%d.Key", i+1), k)
				tag.Set(fmt.Sprintf("Tag.%d.Value", i+1), imageTags[k])
			}
			if st, body, err := s.ec2As(c.key(), c.Region, tag); err != nil || st != http.StatusOK {
				http.Error(w, fmt.Sprintf("stub: tag image: %v %s", err, body), http.StatusBadGateway)
				return
			}
		}
		f := c.Form
		var asked []string
		var mapping strings.Builder
		for n := 1; f.Get(fmt.Sprintf("BlockDeviceMapping.%d.DeviceName", n)) != ""; n++ {
			p := fmt.Sprintf("BlockDeviceMapping.%d.", n)
			asked = append(asked, f.Get(p+"Ebs.SnapshotId"))
			fmt.Fprintf(&mapping, "<item><ebs><deleteOnTermination>%s</deleteOnTermination><snapshotId>%s</snapshotId><volumeSize>%s</volumeSize><volumeType>%s</volumeType><encrypted>false</encrypted></ebs><deviceName>%s</deviceName></item>",
				esc(or(f.Get(p+"Ebs.DeleteOnTermination"), "true")), esc(f.Get(p+"Ebs.SnapshotId")), esc(or(f.Get(p+"Ebs.VolumeSize"), s.snapshotSize(c.key(), c.Region, f.Get(p+"Ebs.SnapshotId")))),
				esc(or(f.Get(p+"Ebs.VolumeType"), "gp2")), esc(f.Get(p+"DeviceName")))
		}
		_, desc, err := s.ec2As(c.key(), c.Region, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {id}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		made := snapshotIDRE.FindAllSubmatch(desc, -1)
		s.mu.Lock()
		for i, sm := range made {
			if i < len(asked) && asked[i] != "" {
				s.registered[string(sm[1])] = registration{key: c.key(), image: id, region: c.Region, snapshot: asked[i]}
			}
		}
		s.images[id] = imageReg{mapping: mapping.String(), root: f.Get("RootDeviceName"), arch: or(f.Get("Architecture"), "x86_64"), ena: f.Get("EnaSupport") == "true"}
		s.mu.Unlock()
	}
	answer(w, status, out)
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
