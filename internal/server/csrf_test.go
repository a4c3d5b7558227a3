package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCSRF(t *testing.T) {
	c := NewCSRF()
	if c.Token("s1") == c.Token("s2") || c.Token("s1") != c.Token("s1") {
		t.Fatal("tokens are not a function of the session")
	}
	if NewCSRF().Token("s1") == c.Token("s1") {
		t.Fatal("two guards derive the same token: the key is not random")
	}
	var reached int
	h := c.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }),
		func(r *http.Request) string { return r.Header.Get("X-Test-Session") })
	form := func(v url.Values) *strings.Reader { return strings.NewReader(v.Encode()) }

	for _, tc := range []struct {
		name    string
		method  string
		session string
		headers map[string]string
		form    url.Values
		want    int
	}{
		{"a GET passes", "GET", "s1", nil, nil, 200},
		{"same-origin post with the session's token", "POST", "s1",
			map[string]string{"Sec-Fetch-Site": "same-origin"}, url.Values{CSRFField: {c.Token("s1")}}, 200},
		{"same-origin post without a token", "POST", "s1",
			map[string]string{"Sec-Fetch-Site": "same-origin"}, url.Values{}, 403},
		{"another session's token", "POST", "s1",
			map[string]string{"Sec-Fetch-Site": "same-origin"}, url.Values{CSRFField: {c.Token("s2")}}, 403},
		{"cross-site post with a valid token", "POST", "s1",
			map[string]string{"Sec-Fetch-Site": "cross-site"}, url.Values{CSRFField: {c.Token("s1")}}, 403},
		{"foreign Origin, old browser", "POST", "s1",
			map[string]string{"Origin": "https://evil.example"}, url.Values{CSRFField: {c.Token("s1")}}, 403},
		{"no session (a login form), same origin", "POST", "",
			map[string]string{"Sec-Fetch-Site": "same-origin"}, url.Values{}, 200},
		{"no session, cross-site", "DELETE", "",
			map[string]string{"Sec-Fetch-Site": "cross-site"}, nil, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reached
			var r *http.Request
			if tc.form != nil {
				r = httptest.NewRequest(tc.method, "http://kiln.test/x", form(tc.form))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r = httptest.NewRequest(tc.method, "http://kiln.test/x", nil)
			}
			r.Header.Set("X-Test-Session", tc.session)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if got := reached - before; (tc.want == 200) != (got == 1) {
				t.Fatalf("handler reached %d times with status %d", got, w.Code)
			}
		})
	}
}
