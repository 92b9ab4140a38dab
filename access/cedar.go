package access

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/sekisho/sekisho"
)

// CedarSchema is the Cedar schema of sekisho's authorisation requests
// (access/sekisho.cedarschema): the entity types, the actions and the
// context attributes every policy and grant is validated against when it is
// written.
//
//go:embed sekisho.cedarschema
var CedarSchema []byte

// Problem types of policies and grants that do not compile.
const (
	ProblemPolicyInvalid = "policy-invalid"
	ProblemGrantInvalid  = "grant-invalid"
)

// newValidator parses and resolves the shipped schema.
func newValidator() (*validate.Validator, error) {
	var s schema.Schema
	s.SetFilename("sekisho.cedarschema")
	if err := s.UnmarshalCedar(CedarSchema); err != nil {
		return nil, fmt.Errorf("access: cedar schema: %w", err)
	}
	r, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("access: cedar schema: %w", err)
	}
	return validate.New(r), nil
}

// compile parses the text of one Cedar policy and validates it against the
// schema (strict mode). Its error is an EInvalid of problem type typ
// (policy-invalid or grant-invalid) carrying the parser's or validator's
// message.
func (s *Service) compile(id, text, typ string) (*cedar.Policy, error) {
	p, err := parsePolicy(text)
	if err != nil {
		return nil, &sekisho.Error{Code: sekisho.EInvalid, Type: typ, Field: "cedar", Message: sekisho.Message(err)}
	}
	if err := s.validator.Policy(id, (*xast.Policy)(p.AST())); err != nil {
		return nil, &sekisho.Error{Code: sekisho.EInvalid, Type: typ, Field: "cedar",
			Message: "policy does not validate against the Cedar schema (access/sekisho.cedarschema): " + oneLine(err.Error())}
	}
	return p, nil
}

// oneLine joins a multi-line message.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// cedarString quotes s as a Cedar string literal with cedar-go's own
// escaping (Rust's escape_debug: \n, \t, \0, \", \\, \u{…} for anything not
// printable), which its parser reads back exactly. Go's %q is not Cedar's
// syntax: it writes \a, \b, \f, \v and \x escapes that Cedar refuses.
func cedarString(s string) string { return string(cedar.String(s).MarshalCedar()) }
