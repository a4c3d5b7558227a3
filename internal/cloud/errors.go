package cloud

import "errors"

// Error classes. Backends mark their errors with Mark so the core can decide
// with errors.Is while the message keeps the backend's own detail.
var (
	// ErrNotFound: the resource does not exist (or no longer does).
	ErrNotFound = errors.New("not found")
	// ErrNotYet: a dependency still holds the resource (in use, dependency
	// violation); retrying later may succeed.
	ErrNotYet = errors.New("not yet possible")
	// ErrThrottled: the service limited the request rate; retry with backoff.
	ErrThrottled = errors.New("throttled")
	// ErrAccessDenied: the credentials may not do this.
	ErrAccessDenied = errors.New("access denied")
	// ErrQuota: an account limit was reached.
	ErrQuota = errors.New("quota exceeded")
	// ErrPublicAccessBlocked: the region blocks public images.
	ErrPublicAccessBlocked = errors.New("image block public access is on")
	// ErrInvalid: the request was refused as invalid; retrying will not help.
	ErrInvalid = errors.New("invalid request")
)

// Mark returns err classified as class: errors.Is(Mark(err, c), c) holds and
// the message is err's own.
func Mark(err, class error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, class: class}
}

type marked struct{ err, class error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, m.class} }

// Retryable reports whether err is worth retrying after a pause.
func Retryable(err error) bool {
	return errors.Is(err, ErrThrottled) || errors.Is(err, ErrNotYet)
}
