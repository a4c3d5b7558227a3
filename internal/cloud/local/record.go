package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// recordVersion is the version of the image record format.
const recordVersion = 1

// formatRaw is the format name of the raw disk in imageRecord.Formats.
const formatRaw = "raw"

// imageRecord is what images/<id>.json holds: the image as cloud.Image
// shows it plus what only this backend needs.
type imageRecord struct {
	Version      int                     `json:"version"`
	ID           string                  `json:"id"`
	Name         string                  `json:"name"`
	Description  string                  `json:"description,omitempty"`
	Architecture string                  `json:"architecture"`
	State        cloud.ImageState        `json:"state"`
	Error        string                  `json:"error,omitempty"` // why it failed
	Created      time.Time               `json:"created"`
	Tags         map[string]string       `json:"tags,omitempty"`
	Launch       cloud.LaunchPermissions `json:"launch_permissions"`
	Deprecation  time.Time               `json:"deprecation,omitzero"`
	Size         int64                   `json:"size"`   // bytes of the raw disk
	SHA256       string                  `json:"sha256"` // of the raw disk, = Formats["raw"]
	// Formats maps each format (raw and the exports) to its blob's sha256.
	Formats map[string]string `json:"formats"`
	Token   string            `json:"token,omitempty"`
	Source  *sourceRef        `json:"source,omitempty"` // set on copies
}

// sourceRef names the image a copy was made from.
type sourceRef struct {
	Region string `json:"region"`
	ID     string `json:"id"`
}

// image returns the record as the core sees it.
func (rec *imageRecord) image(region string) cloud.Image {
	return cloud.Image{
		ID:           rec.ID,
		Region:       region,
		Name:         rec.Name,
		Architecture: rec.Architecture,
		State:        rec.State,
		Created:      rec.Created,
		Tags:         maps.Clone(rec.Tags),
		Public:       rec.Launch.Public,
		Deprecation:  rec.Deprecation,
		Size:         rec.Size,
		SHA256:       rec.SHA256,
		Formats:      slices.Sorted(maps.Keys(rec.Formats)),
	}
}

// holdsBlobs reports whether the record keeps its blobs from garbage
// collection: a failed record does not.
func (rec *imageRecord) holdsBlobs() bool { return rec.State != cloud.StateFailed }

// decodeRecord parses and checks a record read from path, which must be
// the record of id.
func decodeRecord(path, id string, data []byte) (*imageRecord, error) {
	var rec imageRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("image record %s: %w", path, err)
	}
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("image record %s: %s %v: %s", path, field, v, want)
	}
	if rec.Version != recordVersion {
		return nil, bad("version", rec.Version, fmt.Sprintf("this kiln reads version %d", recordVersion))
	}
	if rec.ID != id {
		return nil, bad("id", rec.ID, "does not match the file name")
	}
	switch rec.State {
	case cloud.StatePending, cloud.StateAvailable, cloud.StateFailed:
	default:
		return nil, bad("state", rec.State, "want pending, available or failed")
	}
	if rec.Formats[formatRaw] != rec.SHA256 {
		return nil, bad("formats.raw", rec.Formats[formatRaw], "differs from sha256 "+rec.SHA256)
	}
	for f, d := range rec.Formats {
		if checkFormat(f) != nil || !isDigest(d) {
			return nil, bad("formats", fmt.Sprintf("%s=%q", f, d), "want a format name and 64 hex digits")
		}
	}
	return &rec, nil
}

// readRecord returns the record of id, or an error matching
// cloud.ErrNotFound.
func (r *region) readRecord(id string) (*imageRecord, error) {
	path := r.recordPath(id)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cloud.Mark(fmt.Errorf("image %s not found in region %s", id, r.name), cloud.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return decodeRecord(path, id, data)
}

// writeRecord stores rec atomically. The caller holds the region lock.
func (r *region) writeRecord(rec *imageRecord) error {
	rec.Version = recordVersion
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	path := r.recordPath(rec.ID)
	if err := writeAtomic(r.tmpDir(), path, append(data, '\n'), nextVersionTime(path)); err != nil {
		return fmt.Errorf("write image record %s: %w", path, err)
	}
	return nil
}
