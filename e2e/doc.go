// Package e2e holds end-to-end tests that build the sekisho binary and drive
// it as a user, an auditor or a crash would: a server killed with SIGKILL
// mid-request, and an outside verifier that knows nothing of sekisho's code
// but the auditor's HTTP interface. It has no code of its own.
package e2e
