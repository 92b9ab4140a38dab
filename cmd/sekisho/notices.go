package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/report"
	"github.com/sekisho/sekisho/vault"
)

// purposeBreachNotification is the purpose the contact fields are read under.
const purposeBreachNotification = "breach-notification"

// noticeSubject is one person of an incident's scope to notify.
type noticeSubject struct{ collection, id, org, region string }

// noticeReader opens the contact fields of records (audited by the vault).
type noticeReader interface {
	schema(ctx context.Context, collection string) (*sekisho.Schema, error)
	read(ctx context.Context, collection, org string, ids, fields []string) ([]*sekisho.Record, error)
}

func newIncidentNoticesCmd() *cobra.Command {
	var src incidentSource
	var id, region, out, templates, contact, format string
	cmd := &cobra.Command{
		Use:   "notices --incident ID [--region R] --out DIR",
		Short: "Write, per region, the persons to notify with their contact channel and the notice texts",
		Long: `Write the notices to individuals of an incident (APPI art. 26(2), GDPR art. 34,
PDPA s. 37(4), UU PDP art. 46, Taiwan PDPA art. 12): per region of the
exposed and possibly exposed persons,

  DIR/notify-REGION.csv       collection, record id and the contact fields only
                              (the fields classified contact), opened under
                              purpose breach-notification: every read is audited
  DIR/notice-REGION.LANG.txt  the notice text in the region's language (jp ja,
                              th th, tw zh-TW, id id) and in English

The texts come from templates (en, ja, th, zh-TW, id) that an operator edits:
copy incident/templates/notice.LANG.txt into a directory, change it, and give
--templates DIR. Through a running server (the profile's credential: an admin
of the records' org or an auditor), or offline from a stopped instance's
data directory (--data, which takes its lock).`,
		Example: `  sekisho incident notices --incident inc-0123456789abcdef --out ./notices
  sekisho incident notices --data ./breach-demo --incident inc-0123456789abcdef --region jp --out ./notices`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" || out == "" {
				return usageErrorf("give --incident ID and --out DIR")
			}
			ctx := cmd.Context()
			n, err := src.twin().notices(ctx, id)
			if err != nil {
				return err
			}
			defer n.done()
			in, ctl := n.in, n.ctl
			if contact != "" {
				ctl.Contact = contact
			}
			res, err := writeNotices(ctx, cmd, n.rd, in, n.subjects, n.items, ctl, region, out, templates, format == "json")
			if err != nil || format != "json" {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), map[string]any{"incident": in.ID, "regions": res})
		},
	}
	src.flags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&id, "incident", "", "the incident's id")
	fl.StringVar(&region, "region", "", "only this region's persons")
	fl.StringVar(&out, "out", "", "directory to write the lists and notices into (created, mode 0700)")
	fl.StringVar(&templates, "templates", "", "directory of edited templates notice.LANG.txt (default: the built-in ones)")
	fl.StringVar(&contact, "contact", "", "the contact point named in the notices (default: the controller's contact)")
	addFormatFlag(fl, &format, "table", "table", "json")
	return cmd
}

func scopeItems(sc *incident.Scope) []string {
	var out []string
	for c, cc := range sc.ByCollection {
		for _, f := range cc.Fields {
			out = append(out, c+"."+f)
		}
	}
	slices.Sort(out)
	return out
}

// writeNotices reads the contact fields of the persons, per collection and
// org in batches (each batch one audited read under breach-notification),
// and writes one list and the notice texts per region.
func writeNotices(ctx context.Context, cmd *cobra.Command, rd noticeReader, in *incident.Incident, subjects []noticeSubject, items []string,
	ctl report.Controller, only, out, templates string, quiet bool) ([]noticeRegion, error) {
	var res []noticeRegion
	say := func(format string, args ...any) {
		if !quiet {
			fmt.Fprintf(cmd.OutOrStdout(), format, args...)
		}
	}
	byRegion := map[string][]noticeSubject{}
	for _, s := range subjects {
		if only == "" || s.region == only {
			byRegion[s.region] = append(byRegion[s.region], s)
		}
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	contactFields := map[string][]string{}
	for _, region := range slices.Sorted(maps.Keys(byRegion)) {
		ss := byRegion[region]
		// The contact fields of the region's collections.
		var cols []string
		for _, s := range ss {
			if _, ok := contactFields[s.collection]; !ok {
				sch, err := rd.schema(ctx, s.collection)
				if err != nil {
					return nil, err
				}
				var fs []string
				for _, f := range sch.Fields {
					if f.Classification == sekisho.ClassContact {
						fs = append(fs, f.Name)
					}
				}
				slices.Sort(fs)
				contactFields[s.collection] = fs
			}
			for _, f := range contactFields[s.collection] {
				if !slices.Contains(cols, f) {
					cols = append(cols, f)
				}
			}
		}
		slices.Sort(cols)
		values := map[string]map[string]json.RawMessage{}
		groups := map[[2]string][]string{}
		for _, s := range ss {
			if len(contactFields[s.collection]) > 0 {
				k := [2]string{s.collection, s.org}
				groups[k] = append(groups[k], s.id)
			}
		}
		for k, ids := range groups {
			for start := 0; start < len(ids); start += sekisho.MaxBatch {
				recs, err := rd.read(ctx, k[0], k[1], ids[start:min(len(ids), start+sekisho.MaxBatch)], contactFields[k[0]])
				if err != nil {
					return nil, fmt.Errorf("contact fields of %s: %w", k[0], err)
				}
				for _, r := range recs {
					values[k[0]+"/"+r.ID] = r.Fields
				}
			}
		}
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		w.Write(append([]string{"collection", "record_id", "region"}, cols...))
		n := 0
		for _, s := range ss {
			row := []string{s.collection, s.id, s.region}
			v := values[s.collection+"/"+s.id]
			for _, c := range cols {
				cell := ""
				if raw, ok := v[c]; ok {
					var str string
					if json.Unmarshal(raw, &str) == nil {
						cell = str
					} else {
						cell = string(raw)
					}
				}
				row = append(row, cell)
			}
			w.Write(row)
			n++
		}
		w.Flush()
		path := filepath.Join(out, "notify-"+region+".csv")
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			return nil, err
		}
		say("%s: %d persons (contact fields: %s)\n", path, n, strings.Join(cols, ", "))
		nr := noticeRegion{Region: region, List: path, Persons: n, ContactFields: cols}
		for _, lang := range incident.RegionLangs(region) {
			name := ctl.Name[lang]
			if name == "" {
				name = ctl.NameIn("en")
			}
			if name == "" {
				name = "[controller]"
			}
			contact := ctl.Contact
			if contact == "" {
				contact = "[contact point]"
			}
			text, err := incident.Notice(lang, templates, incident.NoticeData{Controller: name, Contact: contact, Incident: in.ID,
				Since: in.Since.Format(time.RFC3339), Until: in.Until.Format(time.RFC3339), Discovered: in.DiscoveredAt.Format(time.RFC3339),
				Items: strings.Join(items, ", ")})
			if err != nil {
				return nil, err
			}
			np := filepath.Join(out, "notice-"+region+"."+lang+".txt")
			if err := os.WriteFile(np, text, 0o600); err != nil {
				return nil, err
			}
			say("%s\n", np)
			nr.Notices = append(nr.Notices, np)
		}
		res = append(res, nr)
	}
	return res, nil
}

// noticeRegion is what incident notices wrote for one region (--format json).
type noticeRegion struct {
	Region        string   `json:"region"`
	List          string   `json:"list"`
	Persons       int      `json:"persons"`
	ContactFields []string `json:"contact_fields"`
	Notices       []string `json:"notices"`
}

// localNoticeReader reads through a stopped instance's vault, as the local
// operator of each record's org (audited like any read).
type localNoticeReader struct {
	v      *vault.Vault
	device string
}

func (l *localNoticeReader) schema(ctx context.Context, collection string) (*sekisho.Schema, error) {
	return l.v.Schema(ctx, collection)
}

func (l *localNoticeReader) read(ctx context.Context, collection, org string, ids, fields []string) ([]*sekisho.Record, error) {
	c := sekisho.Caller{Principal: "cli-notices", Org: org, Device: l.device, Source: "local", Roles: []string{"admin"},
		Purpose: purposeBreachNotification, RequestID: "notices-" + time.Now().UTC().Format("20060102T150405.000000Z")}
	return l.v.BatchGet(ctx, c, collection, ids, fields)
}

// apiNoticeReader reads through the API with the profile's credential.
type apiNoticeReader struct{ c *client.Client }

func (a *apiNoticeReader) schema(ctx context.Context, collection string) (*sekisho.Schema, error) {
	var s sekisho.Schema
	if err := a.c.JSON(ctx, http.MethodGet, "/v1/collections/"+url.PathEscape(collection), "", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (a *apiNoticeReader) read(ctx context.Context, collection, _ string, ids, fields []string) ([]*sekisho.Record, error) {
	var out struct {
		Records []*sekisho.Record `json:"records"`
	}
	err := a.c.JSON(ctx, http.MethodPost, "/v1/collections/"+url.PathEscape(collection)+"/records:batchGet", purposeBreachNotification,
		map[string]any{"ids": ids, "fields": fields}, &out)
	return out.Records, err
}
