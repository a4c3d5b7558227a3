package drift

// Kinds lists every kind of finding, drift first, then warnings and
// orphans, for readers that report each kind even when none was found.
var Kinds = []Kind{
	Missing, Unavailable, Name, Architecture, Public, Permissions, Deprecation,
	Policy, Deprecated, Deprecating, Orphan,
}

// Severity is the severity of a finding of kind k.
func (k Kind) Severity() Severity { return k.severity() }
