package awstest

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// upstream is the server a proxy of this package forwards requests to.
type upstream struct {
	target string
	client *http.Client
}

func newUpstream(target string, timeout time.Duration) upstream {
	return upstream{target: strings.TrimRight(target, "/"), client: &http.Client{Timeout: timeout}}
}

// forward sends the request, whose body was read into body, to the
// upstream and copies the answer back, through patch when it is set and
// the answer is a success.
func (u upstream) forward(w http.ResponseWriter, r *http.Request, body []byte, patch func([]byte) []byte) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	// Let the transport negotiate (and undo) compression, so patches see
	// plain text.
	req.Header.Del("Accept-Encoding")
	req.ContentLength = int64(len(body))
	resp, err := u.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if patch != nil && resp.StatusCode == http.StatusOK {
		out = patch(out)
	}
	for k, v := range resp.Header {
		if k != "Content-Length" && k != "Content-Encoding" {
			w.Header()[k] = v
		}
	}
	if r.Method == http.MethodHead {
		// No body: the length is the object's, as the upstream said.
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}
