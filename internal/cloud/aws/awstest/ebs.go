package awstest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// What the stub does for the EBS direct APIs and RegisterImage, where
// moto 5.2 falls short:
//
//   - PutSnapshotBlock: moto keeps every block in memory (a 2 GiB disk in
//     16 regions would be 11 GB in its process) and checks no checksum.
//     The stub answers it itself in AWS's wire format: the block's SHA-256
//     is checked against the body, as EBS does, and only the digest is
//     kept, so a test can compare a snapshot with the disk it came from.
//   - StartSnapshot goes to moto, which makes the snapshot in EC2 (tagged)
//     and shows it completed at once; the stub shows it pending in
//     DescribeSnapshots until CompleteSnapshot, which the stub checks
//     (block count, the LINEAR checksum of the checksums) before moto
//     hears of it.
//   - RegisterImage: moto ignores the block device mapping (it makes a
//     15 GiB snapshot of its own), the architecture, ENA support and the
//     tags. The stub applies the tags and shows the image in DescribeImages
//     as registered: the given snapshot, root device, architecture, ENA.

// ebsSnapshot is a snapshot started through the EBS direct APIs.
type ebsSnapshot struct {
	region    string
	blocks    map[int32][sha256.Size]byte
	completed bool
}

// imageReg is what RegisterImage asked for, as the stub shows it.
type imageReg struct {
	mapping, root, arch string
	ena                 bool
}

// SnapshotBlocks returns the digests of the blocks written to a snapshot
// through the EBS direct APIs, by block index, and whether it was
// completed.
func (s *Stub) SnapshotBlocks(id string) (map[int32][sha256.Size]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, ok := s.ebs[id]
	if !ok {
		return nil, false
	}
	return maps.Clone(snap.blocks), snap.completed
}

// ebsCall answers the EBS direct API calls; it reports false for the
// calls it passes on to moto.
func (s *Stub) ebsCall(w http.ResponseWriter, r *http.Request, c Call, body []byte) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "snapshots":
		s.startSnapshot(w, r, c, body)
	case r.Method == http.MethodPut && len(parts) == 4 && parts[0] == "snapshots" && parts[2] == "blocks":
		s.putBlock(w, r, c, parts[1], parts[3], body)
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "snapshots" && parts[1] == "completion":
		s.completeSnapshot(w, r, c, parts[2], body)
	default:
		s.forward(w, r, body, nil)
	}
}

func ebsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (s *Stub) startSnapshot(w http.ResponseWriter, r *http.Request, c Call, body []byte) {
	rec := &recorder{header: http.Header{}}
	s.forward(rec, r, body, nil)
	var out struct {
		SnapshotID string `json:"SnapshotId"`
		BlockSize  int    `json:"BlockSize"`
	}
	if rec.status == http.StatusOK || rec.status == 0 {
		if err := json.Unmarshal(rec.body, &out); err == nil && out.SnapshotID != "" {
			s.mu.Lock()
			s.ebs[out.SnapshotID] = &ebsSnapshot{region: c.Region, blocks: map[int32][sha256.Size]byte{}}
			s.mu.Unlock()
			// Moto says 512 (bytes); EBS answers in bytes: 524288.
			var m map[string]any
			if json.Unmarshal(rec.body, &m) == nil {
				m["BlockSize"] = 512 << 10
				m["Status"] = "pending"
				rec.body, _ = json.Marshal(m)
			}
		}
	}
	rec.copyTo(w)
}

func (s *Stub) putBlock(w http.ResponseWriter, r *http.Request, c Call, id, index string, body []byte) {
	i, err := strconv.ParseInt(index, 10, 32)
	if err != nil || i < 0 {
		ebsError(w, http.StatusBadRequest, "ValidationException", "invalid block index "+index)
		return
	}
	s.mu.Lock()
	snap, ok := s.ebs[id]
	s.mu.Unlock()
	switch {
	case !ok:
		ebsError(w, http.StatusNotFound, "ResourceNotFoundException", "The snapshot '"+id+"' does not exist.")
		return
	case snap.completed:
		ebsError(w, http.StatusBadRequest, "ValidationException", "The snapshot '"+id+"' is not in the pending state.")
		return
	case snap.region != c.Region:
		ebsError(w, http.StatusNotFound, "ResourceNotFoundException", "The snapshot '"+id+"' does not exist in "+c.Region+".")
		return
	}
	length := r.Header.Get("X-Amz-Data-Length")
	if length != strconv.Itoa(512<<10) || len(body) != 512<<10 {
		ebsError(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("data length %s (%d bytes sent): only 524288 is supported", length, len(body)))
		return
	}
	if alg := r.Header.Get("X-Amz-Checksum-Algorithm"); alg != "SHA256" {
		ebsError(w, http.StatusBadRequest, "ValidationException", "checksum algorithm "+alg+": only SHA256 is supported")
		return
	}
	sum := sha256.Sum256(body)
	got := base64.StdEncoding.EncodeToString(sum[:])
	if want := r.Header.Get("X-Amz-Checksum"); want != got {
		ebsError(w, http.StatusBadRequest, "ValidationException", "INVALID_CHECKSUM: the checksum "+want+" does not match the data ("+got+")")
		return
	}
	s.mu.Lock()
	snap.blocks[int32(i)] = sum
	s.mu.Unlock()
	w.Header().Set("X-Amz-Checksum", got)
	w.Header().Set("X-Amz-Checksum-Algorithm", "SHA256")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, "{}")
}

func (s *Stub) completeSnapshot(w http.ResponseWriter, r *http.Request, c Call, id string, body []byte) {
	s.mu.Lock()
	snap, ok := s.ebs[id]
	var (
		count   int
		digests [][sha256.Size]byte
	)
	if ok {
		count = len(snap.blocks)
		for _, i := range slices.Sorted(maps.Keys(snap.blocks)) {
			digests = append(digests, snap.blocks[i])
		}
	}
	s.mu.Unlock()
	if !ok {
		ebsError(w, http.StatusNotFound, "ResourceNotFoundException", "The snapshot '"+id+"' does not exist.")
		return
	}
	if n := r.Header.Get("X-Amz-ChangedBlocksCount"); n != strconv.Itoa(count) {
		ebsError(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("ChangedBlocksCount %s: %d blocks were written", n, count))
		return
	}
	if sum := r.Header.Get("X-Amz-Checksum"); sum != "" {
		if m := r.Header.Get("X-Amz-Checksum-Aggregation-Method"); m != "LINEAR" {
			ebsError(w, http.StatusBadRequest, "ValidationException", "checksum aggregation method "+m+": only LINEAR is supported")
			return
		}
		h := sha256.New()
		for _, d := range digests {
			h.Write(d[:])
		}
		if got := base64.StdEncoding.EncodeToString(h.Sum(nil)); got != sum {
			ebsError(w, http.StatusBadRequest, "ValidationException", "INVALID_CHECKSUM: the aggregate checksum "+sum+" does not match the blocks written ("+got+")")
			return
		}
	}
	rec := &recorder{header: http.Header{}}
	s.forward(rec, r, body, nil)
	if rec.status < 300 {
		s.mu.Lock()
		snap.completed = true
		s.mu.Unlock()
	}
	rec.copyTo(w)
}

var snapshotStatusRE = regexp.MustCompile(`<snapshotId>(snap-[0-9a-zA-Z]+)</snapshotId>(<volumeId>[^<]*</volumeId>)<status>completed</status>`)

// patchSnapshots shows a snapshot that was started through the EBS direct
// APIs and not completed as pending, as EC2 does.
func (s *Stub) patchSnapshots(body []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshotStatusRE.ReplaceAllFunc(body, func(m []byte) []byte {
		sm := snapshotStatusRE.FindSubmatch(m)
		if snap, ok := s.ebs[string(sm[1])]; ok && !snap.completed {
			return []byte("<snapshotId>" + string(sm[1]) + "</snapshotId>" + string(sm[2]) + "<status>pending</status>")
		}
		return m
	})
}

var volumeSizeRE = regexp.MustCompile(`<volumeSize>(\d+)</volumeSize>`)

// snapshotSize is a snapshot's size in GiB as moto reports it to the
// account of key.
func (s *Stub) snapshotSize(key, region, id string) string {
	_, out, err := s.ec2As(key, region, url.Values{"Action": {"DescribeSnapshots"}, "SnapshotId.1": {id}})
	if err == nil {
		if m := volumeSizeRE.FindSubmatch(out); m != nil {
			return string(m[1])
		}
	}
	return "8"
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

var registeredRE = regexp.MustCompile(`<item><blockDeviceMapping>.*?</blockDeviceMapping>(.*?)<rootDeviceName>[^<]*</rootDeviceName><rootDeviceType>[^<]*</rootDeviceType>(.*?)<imageId>(ami-[0-9a-zA-Z]+)</imageId>`)

// patchImageRegs shows registered images as RegisterImage asked. The
// caller holds s.mu.
func (s *Stub) patchImageRegs(body []byte) []byte {
	if len(s.images) == 0 {
		return body
	}
	return registeredRE.ReplaceAllFunc(body, func(m []byte) []byte {
		sm := registeredRE.FindSubmatch(m)
		reg, ok := s.images[string(sm[3])]
		if !ok {
			return m
		}
		mapping := reg.mapping
		if mapping == "" { // a copy: moto's own snapshot copy stands in for EC2's
			mapping = string(blockMappingRE.FindSubmatch(m)[1])
		}
		return []byte("<item><blockDeviceMapping>" + mapping + "</blockDeviceMapping>" + string(sm[1]) +
			"<rootDeviceName>" + esc(reg.root) + "</rootDeviceName><rootDeviceType>ebs</rootDeviceType>" + string(sm[2]) +
			"<architecture>" + esc(reg.arch) + "</architecture><enaSupport>" + strconv.FormatBool(reg.ena) + "</enaSupport><virtualizationType>hvm</virtualizationType>" +
			"<imageId>" + string(sm[3]) + "</imageId>")
	})
}

var blockMappingRE = regexp.MustCompile(`^<item><blockDeviceMapping>(.*?)</blockDeviceMapping>`)

// DropCopyImageTags makes CopyImage ignore its TagSpecifications, as moto
// does (and some endpoints), to test the fallback that tags copies after.
func (s *Stub) DropCopyImageTags(drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropCopyTags = drop
}

// tagImageAndSnapshots tags an image and the snapshots behind it in moto,
// in the account of key.
func (s *Stub) tagImageAndSnapshots(key, region, id string, imageTags, snapTags map[string]string) error {
	tag := func(ids []string, tags map[string]string) error {
		if len(tags) == 0 || len(ids) == 0 {
			return nil
		}
		q := url.Values{"Action": {"CreateTags"}}
		for i, r := range ids {
			q.Set(fmt.Sprintf("ResourceId.%d", i+1), r)
		}
		for i, k := range sortedKeys(tags) {
			q.Set(fmt.Sprintf("Tag.%d.Key", i+1), k)
			q.Set(fmt.Sprintf("Tag.%d.Value", i+1), tags[k])
		}
		if st, body, err := s.ec2As(key, region, q); err != nil || st != http.StatusOK {
			return fmt.Errorf("tag %v: %v %s", ids, err, body)
		}
		return nil
	}
	if err := tag([]string{id}, imageTags); err != nil {
		return err
	}
	if len(snapTags) == 0 {
		return nil
	}
	_, desc, err := s.ec2As(key, region, url.Values{"Action": {"DescribeImages"}, "ImageId.1": {id}})
	if err != nil {
		return err
	}
	var snaps []string
	for _, sm := range snapshotIDRE.FindAllSubmatch(desc, -1) {
		snaps = append(snaps, string(sm[1]))
	}
	return tag(snaps, snapTags)
}

// createTags refuses, as EC2 does, to tag an image or snapshot that does
// not exist (moto tags any id); it reports whether it answered.
func (s *Stub) createTags(w http.ResponseWriter, c Call) bool {
	for i := 1; ; i++ {
		id := c.Form.Get(fmt.Sprintf("ResourceId.%d", i))
		if id == "" {
			return false
		}
		var q url.Values
		var code string
		switch {
		case strings.HasPrefix(id, "ami-"):
			q, code = url.Values{"Action": {"DescribeImages"}, "ImageId.1": {id}}, "InvalidAMIID.NotFound"
		case strings.HasPrefix(id, "snap-"):
			q, code = url.Values{"Action": {"DescribeSnapshots"}, "SnapshotId.1": {id}}, "InvalidSnapshot.NotFound"
		default:
			continue
		}
		status, out, err := s.ec2As(c.key(), c.Region, q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		if status != http.StatusOK || !strings.Contains(string(out), ">"+id+"<") {
			writeError(w, c, http.StatusBadRequest, code, fmt.Sprintf("The ID '%s' does not exist", id))
			return true
		}
	}
}

// recorder keeps a forwarded answer so the stub can read it first.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int)   { r.status = s }
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body = append(r.body, p...)
	return len(p), nil
}

func (r *recorder) copyTo(w http.ResponseWriter) {
	for k, v := range r.header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(r.body)))
	if r.status == 0 {
		r.status = http.StatusOK
	}
	w.WriteHeader(r.status)
	w.Write(r.body)
}
