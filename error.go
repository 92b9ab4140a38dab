package sekisho

import (
	"errors"
	"fmt"
)

// ErrorCode classifies an Error. The HTTP layer maps each code to a status and a
// stable problem type URI, so the codes are part of the public contract.
type ErrorCode string

// Error codes.
const (
	EInvalid      ErrorCode = "invalid"         // the input failed validation
	ENotFound     ErrorCode = "not-found"       // no such object (or not visible to the caller)
	EConflict     ErrorCode = "conflict"        // the object exists or changed concurrently
	EUnauthorized ErrorCode = "unauthenticated" // no valid credential
	EForbidden    ErrorCode = "forbidden"       // authenticated, but not allowed
	EGone         ErrorCode = "erased"          // the record was erased (crypto-shredded)
	ETooLarge     ErrorCode = "too-large"       // the request body or batch is too large
	EUnavailable  ErrorCode = "unavailable"     // the store or a dependency is not ready
	EInternal     ErrorCode = "internal"        // a bug or an unexpected failure
	EUnsupported  ErrorCode = "unsupported"     // media type or method not supported
	ERateLimited  ErrorCode = "rate-limited"    // too many requests from one source; retry later
)

// ProblemStorageFull refines EUnavailable: the store's disk is full, so
// writes (and reads, which cannot be audited) are refused until space is
// freed; nothing already committed is lost.
const ProblemStorageFull = "storage-full"

// ProblemStoreUnavailable refines EUnavailable: the store cannot be
// reached (a database that is down, restarting or failing over).
const ProblemStoreUnavailable = "store-unavailable"

// IsStorageFull reports whether err is, or wraps, the storage-full problem.
func IsStorageFull(err error) bool {
	var e *Error
	for err != nil {
		if !errors.As(err, &e) {
			return false
		}
		if e.Type == ProblemStorageFull {
			return true
		}
		err = e.Err
	}
	return false
}

// Error is the error type of the domain. Message is safe to show to the
// caller: it never contains a secret or a field value.
type Error struct {
	Code    ErrorCode
	Message string
	// Field names the input field that failed, when there is one.
	Field string
	// Type refines the code into a more specific problem type (for example
	// "device-not-approved" under "unauthenticated"); "" means the code itself.
	Type string
	// Err is the underlying cause; it is logged, never returned to a client.
	Err error
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// TypedErrorf returns an *Error with a specific problem type.
func TypedErrorf(code ErrorCode, typ, format string, args ...any) *Error {
	return &Error{Code: code, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an *Error about one input field.
func FieldErrorf(code ErrorCode, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Code returns the code of the first *Error in err's chain, EInternal for any
// other non-nil error, and "" for nil.
func Code(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// Message returns the client-safe message of err.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
