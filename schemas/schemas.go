// Package schemas ships the default collections of a messaging operator:
// users, partners and employees, as YAML documents in the same format that
// the API and `sekisho` accept.
package schemas

import (
	"embed"
	"fmt"

	"github.com/sekisho/sekisho"
)

//go:embed *.yaml
var files embed.FS

// Names are the default collections, in order.
var Names = []string{"users", "partners", "employees"}

// Defaults parses and returns the default schemas.
func Defaults() ([]*sekisho.Schema, error) {
	out := make([]*sekisho.Schema, 0, len(Names))
	for _, n := range Names {
		b, err := files.ReadFile(n + ".yaml")
		if err != nil {
			return nil, fmt.Errorf("default schema %s: %w", n, err)
		}
		s, err := Parse(b)
		if err != nil {
			return nil, fmt.Errorf("default schema %s: %w", n, err)
		}
		out = append(out, s)
	}
	return out, nil
}
