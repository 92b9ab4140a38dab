package sekisho

// Object kinds of the control plane, as stored in ObjectStore. Each kind is
// owned by one package, which alone writes and decodes its bodies.
const (
	// Access control (package access).
	KindOrg           = "org"
	KindPrincipal     = "principal"
	KindDevice        = "device"
	KindGrant         = "grant"
	KindPolicy        = "policy"
	KindPolicyVersion = "policy-version"
	KindBootstrap     = "bootstrap"
	// KindSignInSession is a device's single sign-on session (the IdP's
	// refresh token, sealed), keyed by device id.
	KindSignInSession = "sign-in-session"

	// The exfiltration guard (package guard).
	KindGuardRule        = "guard-rule"
	KindGuardRuleVersion = "guard-rule-version"
	KindQuarantine       = "quarantine"
	KindGuardProfile     = "guard-profile"
	KindHoneytoken       = "honeytoken"
	KindGuardState       = "guard-state"

	// Incidents (package incident).
	KindIncident = "incident"

	// Key custody and retention (package vault).
	KindRotation    = "key-rotation"
	KindHold        = "hold"
	KindDestruction = "key-destruction"
)
