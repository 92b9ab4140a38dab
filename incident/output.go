package incident

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the scope's JSON form, indented, with a final newline.
func WriteJSON(w io.Writer, sc *Scope) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sc)
}

// WriteTable writes the scope for a person to read.
func WriteTable(w io.Writer, sc *Scope) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "incident\t%s\n", sc.Incident)
	fmt.Fprintf(tw, "suspects\tprincipals %s; devices %s; orgs %s\n", list(sc.Suspects.Principals), list(sc.Suspects.Devices), list(sc.Suspects.Orgs))
	fmt.Fprintf(tw, "window\t%s to %s\n", sc.Window.Since, sc.Window.Until)
	if len(sc.LogSizes) > 1 {
		var logs []string
		for _, k := range slices.Sorted(maps.Keys(sc.LogSizes)) {
			logs = append(logs, fmt.Sprintf("%s %d", k, sc.LogSizes[k]))
		}
		fmt.Fprintf(tw, "audit logs\t%d events read of %d logs (%s)\n", sc.Events, len(sc.LogSizes), strings.Join(logs, ", "))
	} else {
		fmt.Fprintf(tw, "audit log\t%d events read of a log of %d\n", sc.Events, sc.LogSize)
	}
	fmt.Fprintf(tw, "subjects exposed\t%d (values returned)\n", sc.SubjectsExposed)
	fmt.Fprintf(tw, "fields exposed\t%d (field values of those subjects)\n", sc.FieldsExposed)
	fmt.Fprintf(tw, "subjects possible\t%d (touched, nothing returned)\n", sc.SubjectsPossible)
	fmt.Fprintf(tw, "denied attempts\t%d\n", sc.DeniedAttempts)
	fmt.Fprintf(tw, "worst case\t%d subjects the suspects could have read\n", sc.WorstCaseSubjects)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COLLECTION\tEXPOSED\tFIELDS\tPOSSIBLE\tDENIED\tFIELD NAMES")
	for _, k := range slices.Sorted(maps.Keys(sc.ByCollection)) {
		c := sc.ByCollection[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", k, c.SubjectsExposed, c.FieldsExposed, c.SubjectsPossible, c.DeniedAttempts, list(c.Fields))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "REGION\tCOUNTRY\tEXPOSED\tFIELDS\tPOSSIBLE\t")
	for _, k := range slices.Sorted(maps.Keys(sc.ByRegion)) {
		r := sc.ByRegion[k]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t\n", k, dash(r.Country), r.SubjectsExposed, r.FieldsExposed, r.SubjectsPossible)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CLASSIFICATION\tEXPOSED\tFIELDS\tFIELD NAMES\t\t")
	for _, k := range slices.Sorted(maps.Keys(sc.ByClassification)) {
		c := sc.ByClassification[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\t\n", k, c.SubjectsExposed, c.FieldsExposed, list(c.Fields))
	}
	if len(sc.WorstCase) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "WORST CASE: COLLECTION\tORG\tREGIONS\tRECORDS\tVIA\t")
		for _, r := range sc.WorstCase {
			regions := "all"
			if len(r.Regions) > 0 {
				regions = strings.Join(r.Regions, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t\n", r.Collection, r.Org, regions, r.Records, strings.Join(r.Via, "; "))
		}
	}
	return tw.Flush()
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteCSV writes the scope's numbers as CSV: one row per number, with the
// dimension (total, collection, region or classification) it is counted in.
func WriteCSV(w io.Writer, sc *Scope) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"incident", "dimension", "key", "country", "subjects_exposed", "fields_exposed", "subjects_possible", "denied_attempts", "worst_case_subjects"})
	i := strconv.Itoa
	cw.Write([]string{sc.Incident, "total", "", "", i(sc.SubjectsExposed), i(sc.FieldsExposed), i(sc.SubjectsPossible), i(sc.DeniedAttempts), strconv.FormatInt(sc.WorstCaseSubjects, 10)})
	for _, k := range slices.Sorted(maps.Keys(sc.ByCollection)) {
		c := sc.ByCollection[k]
		cw.Write([]string{sc.Incident, "collection", k, "", i(c.SubjectsExposed), i(c.FieldsExposed), i(c.SubjectsPossible), i(c.DeniedAttempts), ""})
	}
	for _, k := range slices.Sorted(maps.Keys(sc.ByRegion)) {
		r := sc.ByRegion[k]
		cw.Write([]string{sc.Incident, "region", k, r.Country, i(r.SubjectsExposed), i(r.FieldsExposed), i(r.SubjectsPossible), "", ""})
	}
	for _, k := range slices.Sorted(maps.Keys(sc.ByClassification)) {
		c := sc.ByClassification[k]
		cw.Write([]string{sc.Incident, "classification", k, "", i(c.SubjectsExposed), i(c.FieldsExposed), "", "", ""})
	}
	cw.Flush()
	return cw.Error()
}

// SubjectsHeader is the header of the per-subject notification list.
// event_indexes are indexes in the log event_log (the log of the subject's
// region's store, "default" for the default store's), whose size the scope
// read is log_size: GET /v1/audit/proof/inclusion?region=LOG&index=N&size=S
// proves each. other_log_events lists, as LOG:INDEX, events about the subject
// found in another log (empty unless the region's store was changed).
var SubjectsHeader = []string{"collection", "record_id", "org", "region", "country", "status", "fields_exposed", "masked", "first_time", "last_time", "event_indexes", "event_log", "log_size", "other_log_events"}

// WriteSubjectsCSV writes the per-subject notification list: one row per
// exposed or possible subject of region (every region when region is ""),
// with the indexes of the audit events that exposed or touched it.
func WriteSubjectsCSV(w io.Writer, sc *Scope, region string) error {
	cw := csv.NewWriter(w)
	cw.Write(SubjectsHeader)
	for _, s := range sc.Subjects {
		if region != "" && s.Region != region {
			continue
		}
		idx := make([]string, len(s.Events))
		for i, e := range s.Events {
			idx[i] = strconv.FormatUint(e, 10)
		}
		masked := ""
		if s.Status == StatusExposed {
			masked = strconv.FormatBool(s.Masked)
		}
		var other []string
		for _, k := range slices.Sorted(maps.Keys(s.OtherLogs)) {
			for _, e := range s.OtherLogs[k] {
				other = append(other, k+":"+strconv.FormatUint(e, 10))
			}
		}
		cw.Write([]string{s.Collection, s.ID, s.Org, s.Region, s.Country, s.Status, strings.Join(s.Fields, " "), masked,
			s.First.Format(time.RFC3339Nano), s.Last.Format(time.RFC3339Nano), strings.Join(idx, " "),
			s.Log, strconv.FormatUint(sc.LogSizes[s.Log], 10), strings.Join(other, " ")})
	}
	cw.Flush()
	return cw.Error()
}

// WriteDeniedCSV writes the denied attempts, one a row, by event index.
func WriteDeniedCSV(w io.Writer, sc *Scope) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"event_index", "time", "principal", "device", "action", "collection", "records", "reason", "event_log"})
	for _, a := range sc.Denied {
		cw.Write([]string{strconv.FormatUint(a.Index, 10), a.Time.Format(time.RFC3339Nano), a.Principal, a.Device, a.Action, a.Collection,
			strings.Join(a.Records, " "), a.Reason, a.Log})
	}
	cw.Flush()
	return cw.Error()
}

// Regions returns the regions of the scope's subjects, sorted.
func (sc *Scope) Regions() []string {
	var out []string
	for _, s := range sc.Subjects {
		out = append(out, s.Region)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Formats of a scope: json, table and csv (the numbers), subjects (the
// per-subject notification list, CSV, of one region or all) and denied (the
// denied attempts, CSV).
var Formats = []string{"json", "table", "csv", "subjects", "denied"}

// Render writes sc in format; region narrows the subjects list.
func Render(w io.Writer, sc *Scope, format, region string) error {
	switch format {
	case "json", "":
		return WriteJSON(w, sc)
	case "table":
		return WriteTable(w, sc)
	case "csv":
		return WriteCSV(w, sc)
	case "subjects":
		return WriteSubjectsCSV(w, sc, region)
	case "denied":
		return WriteDeniedCSV(w, sc)
	}
	return fmt.Errorf("format %q: want one of %s", format, strings.Join(Formats, ", "))
}

// ContentType returns the media type of a format.
func ContentType(format string) string {
	switch format {
	case "json", "":
		return "application/json"
	case "table":
		return "text/plain; charset=utf-8"
	}
	return "text/csv; charset=utf-8"
}
