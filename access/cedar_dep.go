// Package access is sekisho's zero-trust access layer (see doc.go).
package access

import _ "github.com/cedar-policy/cedar-go" // the policy engine; used from policy.go
