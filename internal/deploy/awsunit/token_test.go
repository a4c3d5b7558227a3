package awsunit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// tokenOf digests values as the deployment core digests a unit.
func tokenOf(v ...any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}
