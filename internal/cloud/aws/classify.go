package aws

// Classify marks an AWS SDK error with kiln's error class of its AWS error
// code (cloud.ErrNotFound, ErrNotYet, ErrThrottled, ErrInvalid, ...), for
// packages that call AWS services of their own (the deployment unit kinds):
// one classification for every caller of AWS. Errors without an API error
// code are returned as they are.
func Classify(err error) error { return classify(err) }
