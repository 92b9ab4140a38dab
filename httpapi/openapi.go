package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/sekisho/sekisho"
)

// openapiDoc is the OpenAPI 3.1 document of the routes in routes(); a test
// checks the two against each other so that they cannot drift.
//
//go:embed openapi.json
var openapiDoc []byte

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request, _ sekisho.Caller) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openapiDoc)
	return err
}
