package awstest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// exportImage starts an export task. Like AWS it returns the same task
// for a repeated client token.
func (s *Stub) exportImage(w http.ResponseWriter, r *http.Request, c Call) {
	f := c.Form
	format := f.Get("DiskImageFormat")
	switch format {
	case "VMDK", "VHD", "RAW":
	default:
		writeError(w, c, http.StatusBadRequest, "InvalidParameterValue", "DiskImageFormat "+format+" is not one of VMDK, VHD, RAW")
		return
	}
	bucket := f.Get("S3ExportLocation.S3Bucket")
	if bucket == "" {
		writeError(w, c, http.StatusBadRequest, "MissingParameter", "S3ExportLocation.S3Bucket is required")
		return
	}
	token := f.Get("ClientToken")
	s.mu.Lock()
	if id, ok := s.exportToken[token]; ok && token != "" {
		t := s.exports[id]
		s.mu.Unlock()
		writeXML(w, exportImageResponse{XMLNS: ec2NS, RequestID: requestID(), exportTaskXML: t.xml})
		return
	}
	s.mu.Unlock()
	id := f.Get("ImageId")
	if !s.imageExists(w, c, id) {
		return
	}
	b := make([]byte, 9)
	rand.Read(b)
	task := &exportTask{region: c.Region, xml: exportTaskXML{
		Description:   f.Get("Description"),
		Format:        format,
		TaskID:        "export-ami-" + hex.EncodeToString(b)[:17],
		ImageID:       id,
		RoleName:      f.Get("RoleName"),
		Progress:      "0",
		Location:      s3Location{Bucket: bucket, Prefix: f.Get("S3ExportLocation.S3Prefix")},
		Status:        "active",
		StatusMessage: "validating",
	}}
	for k, v := range tagSpecs(f)["export-image-task"] {
		task.xml.Tags = append(task.xml.Tags, xmlTag{Key: k, Value: v})
	}
	s.mu.Lock()
	s.exports[task.xml.TaskID] = task
	if token != "" {
		s.exportToken[token] = task.xml.TaskID
	}
	s.mu.Unlock()
	writeXML(w, exportImageResponse{XMLNS: ec2NS, RequestID: requestID(), exportTaskXML: task.xml})
}

// describeExports answers DescribeExportImageTasks. Each read moves a task
// on; after a few it completes, and the stub writes the exported file to
// moto's S3 as AWS would, or fails the task as AWS does when the bucket is
// missing.
func (s *Stub) describeExports(w http.ResponseWriter, c Call) {
	want := map[string]bool{}
	for n := 1; c.Form.Get(fmt.Sprintf("ExportImageTaskId.%d", n)) != ""; n++ {
		want[c.Form.Get(fmt.Sprintf("ExportImageTaskId.%d", n))] = true
	}
	s.mu.Lock()
	var tasks []*exportTask
	for _, id := range sortedKeys(s.exports) {
		t := s.exports[id]
		if t.region == c.Region && (len(want) == 0 || want[id]) {
			tasks = append(tasks, t)
		}
	}
	s.mu.Unlock()
	if len(want) > 0 && len(tasks) < len(want) {
		writeError(w, c, http.StatusBadRequest, "InvalidExportImageTaskId.NotFound", "an export image task does not exist")
		return
	}
	resp := describeExportsResponse{XMLNS: ec2NS, RequestID: requestID()}
	for _, t := range tasks {
		s.advance(t)
		s.mu.Lock()
		resp.Tasks = append(resp.Tasks, t.xml)
		s.mu.Unlock()
	}
	writeXML(w, resp)
}

func (s *Stub) advance(t *exportTask) {
	s.mu.Lock()
	if t.xml.Status != "active" {
		s.mu.Unlock()
		return
	}
	t.reads++
	if t.reads < s.exportSteps {
		t.xml.Progress = fmt.Sprint(100 * t.reads / s.exportSteps)
		t.xml.StatusMessage = "converting"
		s.mu.Unlock()
		return
	}
	x := t.xml
	s.mu.Unlock()

	key := x.Location.Prefix + x.TaskID + "." + strings.ToLower(x.Format)
	err := s.putObject(t.region, x.Location.Bucket, key, "kiln awstest export of "+x.ImageID+"\n")

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		t.xml.Status, t.xml.StatusMessage = "deleted", err.Error()
		return
	}
	t.xml.Status, t.xml.StatusMessage, t.xml.Progress = "completed", "", ""
}

func (s *Stub) putObject(region, bucket, key, body string) error {
	req, err := http.NewRequest(http.MethodPut, s.target+"/"+bucket+"/"+key, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", scopeAuth(region, "s3"))
	// A whole-object checksum, as S3 keeps for a file written in one part.
	sum := sha256.Sum256([]byte(body))
	req.Header.Set("x-amz-checksum-sha256", base64.StdEncoding.EncodeToString(sum[:]))
	req.Header.Set("x-amz-sdk-checksum-algorithm", "SHA256")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("S3 export location s3://%s/%s: %s: %s", bucket, key, resp.Status, strings.TrimSpace(string(out)))
	}
	return nil
}
