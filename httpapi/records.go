package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/vault"
)

// readBody reads a request body within the size limit.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, sekisho.Errorf(sekisho.ETooLarge, "request body is larger than %d bytes", mbe.Limit)
	}
	if err != nil {
		return nil, sekisho.Errorf(sekisho.EInvalid, "could not read the request body")
	}
	return b, nil
}

// requireJSON refuses bodies declared as something other than JSON.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return sekisho.Errorf(sekisho.EUnsupported, "content type %q is not application/json", ct)
	}
	return nil
}

// decodeStrict decodes one JSON object into v, refusing duplicate keys
// (invalid-json), unknown keys and trailing data. Every request body is
// decoded here.
func decodeStrict(b []byte, v any) error {
	if err := checkDuplicateKeys(b); err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return sekisho.Errorf(sekisho.EInvalid, "request body is not valid: %v", err)
	}
	if dec.More() {
		return sekisho.Errorf(sekisho.EInvalid, "request body has trailing data")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if err := checkDuplicateKeys(b); err != nil {
		return err
	}
	in, err := sekisho.DecodeRecordInput(b)
	if err != nil {
		return err
	}
	rec, err := s.vault.Create(r.Context(), c, r.PathValue("c"), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/collections/"+rec.Collection+"/records/"+rec.ID)
	return writeJSON(w, http.StatusCreated, rec)
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	rec, err := s.vault.Get(r.Context(), c, r.PathValue("c"), r.PathValue("id"), splitList(r.URL.Query().Get("fields")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) updateRecord(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	var req sekisho.RecordPatch
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	rec, err := s.vault.Patch(r.Context(), c, r.PathValue("c"), r.PathValue("id"), &req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) eraseRecord(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.vault.Erase(r.Context(), c, r.PathValue("c"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// recordsResponse is the body of lookup and batch get answers.
type recordsResponse struct {
	Records []*sekisho.Record `json:"records"`
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	var req vault.LookupRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	recs, err := s.vault.Lookup(r.Context(), c, r.PathValue("c"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, recordsResponse{Records: nonNilRecords(recs)})
}

type batchGetRequest struct {
	IDs    []string `json:"ids"`
	Fields []string `json:"fields"`
}

func (s *Server) batchGet(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	var req batchGetRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	recs, err := s.vault.BatchGet(r.Context(), c, r.PathValue("c"), req.IDs, req.Fields)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, recordsResponse{Records: nonNilRecords(recs)})
}

func nonNilRecords(r []*sekisho.Record) []*sekisho.Record {
	if r == nil {
		return []*sekisho.Record{}
	}
	return r
}

type collectionsResponse struct {
	Collections []*sekisho.Schema `json:"collections"`
}

func (s *Server) listCollections(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	list, err := s.vault.Store().ListSchemas(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []*sekisho.Schema{}
	}
	return writeJSON(w, http.StatusOK, collectionsResponse{Collections: list})
}

func (s *Server) getCollection(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	sc, err := s.vault.Schema(r.Context(), r.PathValue("c"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sc)
}

// schemaFromBody parses a schema in JSON or YAML (the same document format
// that the CLI reads from a file).
func schemaFromBody(r *http.Request) (*sekisho.Schema, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	// JSON with a duplicate key is refused like every body (YAML's decoder
	// refuses a duplicate mapping key itself).
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		if err := checkDuplicateKeys(t); err != nil {
			return nil, err
		}
	}
	return schemas.Parse(b)
}

func (s *Server) createCollection(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	sc, err := s.schemaChange(r, c)
	if err != nil {
		return err
	}
	if _, err := s.vault.Store().GetSchema(r.Context(), sc.Collection); err == nil {
		return sekisho.Errorf(sekisho.EConflict, "collection %s exists; change it with PUT /v1/collections/%s", sc.Collection, sc.Collection)
	}
	out, err := s.vault.PutSchema(r.Context(), c, sc)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

// schemaChange checks that the caller may define collections (the vault
// audits a refusal) and reads the schema.
func (s *Server) schemaChange(r *http.Request, c sekisho.Caller) (*sekisho.Schema, error) {
	if err := s.vault.CanPutSchema(r.Context(), c, r.PathValue("c")); err != nil {
		return nil, err
	}
	return schemaFromBody(r)
}

func (s *Server) putCollection(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	sc, err := s.schemaChange(r, c)
	if err != nil {
		return err
	}
	if sc.Collection != r.PathValue("c") {
		return sekisho.FieldErrorf(sekisho.EInvalid, "collection", "schema names collection %q but the path names %q", sc.Collection, r.PathValue("c"))
	}
	out, err := s.vault.PutSchema(r.Context(), c, sc)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
