package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// CSRFField is the form field that carries a CSRF token.
const CSRFField = "csrf_token"

// maxFormBytes bounds the body of a protected form.
const maxFormBytes = 64 << 10

// CSRF protects the forms of a feature whose sessions live in cookies.
// A request that changes something passes only when the browser says it
// comes from this site (net/http's CrossOriginProtection: Sec-Fetch-Site,
// else Origin against Host) and, for a request with a session, its form
// carries the token derived from that session. A page of another site can
// neither send the first nor read the second. Requests authenticated by
// a header (a bearer token) need none of this: browsers do not add
// headers on their own.
type CSRF struct {
	key []byte
	cop *http.CrossOriginProtection
}

// NewCSRF returns a CSRF guard with a fresh random key: tokens do not
// outlive the process, and neither do the sessions they are tied to.
func NewCSRF() *CSRF {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand)
	return &CSRF{key: key, cop: http.NewCrossOriginProtection()}
}

// Token is the CSRF token of a session, to put in CSRFField of each form.
func (c *CSRF) Token(session string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Protect wraps h. GET, HEAD and OPTIONS pass untouched. Any other request
// must come from this site and, when session returns a session for it,
// carry that session's token; otherwise it gets 403 and h never sees it.
func (c *CSRF) Protect(h http.Handler, session func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
			return
		}
		if err := c.cop.Check(r); err != nil {
			http.Error(w, "forbidden: cross-origin request", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
			return
		}
		if s := session(r); s != "" {
			want := c.Token(s)
			if got := r.PostForm.Get(CSRFField); !hmac.Equal([]byte(got), []byte(want)) {
				http.Error(w, "forbidden: the form's CSRF token does not match the session (reload the page)", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
