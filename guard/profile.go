package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
)

// profile is what the guard has learned of one principal: its devices,
// source addresses and purposes, and how its requests spread over the hours
// of the day. It is stored as a guard-profile object, written when something
// new is learned (and the hour counts at most every SyncInterval).
type profile struct {
	Principal string    `json:"principal"`
	Org       string    `json:"org"`
	Devices   []string  `json:"devices"`
	Sources   []string  `json:"sources"`
	Purposes  []string  `json:"purposes"`
	Hours     [24]int64 `json:"hours"`
	Requests  int64     `json:"requests"`

	version int64
	loaded  bool
	dirty   bool
}

const maxProfileList = 64

// profileLocked returns the principal's profile, loading it from the store
// the first time (g.mu is released while reading).
func (g *Guard) profileLocked(ctx context.Context, c sekisho.Caller) *profile {
	p := g.profiles[c.Principal]
	if p != nil && p.loaded {
		return p
	}
	g.mu.Unlock()
	o, err := g.store.GetObject(ctx, sekisho.KindGuardProfile, c.Principal)
	g.mu.Lock()
	if p = g.profiles[c.Principal]; p != nil && p.loaded {
		return p
	}
	p = &profile{Principal: c.Principal, Org: c.Org}
	if err == nil {
		if json.Unmarshal(o.Body, p) == nil {
			p.version = o.Version
		}
	}
	p.loaded = err == nil || sekisho.Code(err) == sekisho.ENotFound
	g.profiles[c.Principal] = p
	return p
}

// anomalies evaluates the anomaly rules on an allowed request.
func (g *Guard) anomalies(ctx context.Context, req sekisho.AccessRequest, rules map[string]*Rule, now time.Time, loc *time.Location, lookupSubj int64) []firing {
	c := req.Caller
	var out []firing
	g.mu.Lock()
	p := g.profileLocked(ctx, c)
	fresh := p.Requests == 0 && len(p.Devices) == 0
	if r := rules[RuleNewDevice]; r.Enabled && !fresh && c.Device != "" && !slices.Contains(p.Devices, c.Device) {
		out = append(out, firing{r, "device " + c.Device + " never seen for " + c.Principal})
	}
	if r := rules[RuleNewSource]; r.Enabled && !fresh && c.Source != "" && !slices.Contains(p.Sources, c.Source) {
		out = append(out, firing{r, "source address " + c.Source + " never seen for " + c.Principal})
	}
	if r := rules[RuleNewPurpose]; r.Enabled && !fresh && c.Purpose != "" && !slices.Contains(p.Purposes, c.Purpose) {
		out = append(out, firing{r, fmt.Sprintf("purpose %q never used by %s (used: %s)", c.Purpose, c.Principal, strings.Join(p.Purposes, ", "))})
	}
	// Off hours, in the org's time zone; quiet for a newcomer's first
	// min_history requests (nothing is known of its hours yet).
	if r := rules[RuleOffHours]; r.Enabled && float64(p.Requests) >= r.param("min_history", 50) {
		h := now.In(loc).Hour()
		if !usualHour(p, r, h) {
			out = append(out, firing{r, fmt.Sprintf("request at %02d:00 (%s), outside %s's usual hours", h, loc, c.Principal)})
		}
	}
	if r := rules[RuleEnumeration]; r.Enabled && req.Action == sekisho.ActionLookup {
		if lookupSubj > int64(r.param("lookup_subjects_per_minute", 15)) {
			out = append(out, firing{r, fmt.Sprintf("%d distinct subjects in a minute through lookups", lookupSubj)})
		}
	}
	g.mu.Unlock()
	return out
}

// usualHour reports whether hour h is usual for p: with enough history, an
// hour (or a neighbour) that holds min_share of its requests; before that,
// the baseline window.
func usualHour(p *profile, r *Rule, h int) bool {
	if float64(p.Requests) >= r.param("learn_after", 200) {
		min := r.param("min_share", 0.01) * float64(p.Requests)
		for _, d := range []int{0, -1, 1} {
			if float64(p.Hours[(h+d+24)%24]) >= math.Max(min, 1) {
				return true
			}
		}
		return false
	}
	start, end := int(r.param("baseline_start", 8)), int(r.param("baseline_end", 20))
	if start <= end {
		return h >= start && h < end
	}
	return h >= start || h < end
}

// learnLocked adds an allowed request to the principal's profile (its hour
// in loc, the org's time zone).
func (g *Guard) learnLocked(c sekisho.Caller, now time.Time, loc *time.Location) {
	p := g.profiles[c.Principal]
	if p == nil {
		return
	}
	add := func(l *[]string, v string) {
		if v != "" && !slices.Contains(*l, v) && len(*l) < maxProfileList {
			*l = append(*l, v)
			p.dirty = true
		}
	}
	add(&p.Devices, c.Device)
	add(&p.Sources, c.Source)
	add(&p.Purposes, c.Purpose)
	p.Hours[now.In(loc).Hour()]++
	p.Requests++
	if p.Requests%50 == 0 {
		p.dirty = true
	}
}

// saveProfiles writes the profiles that changed. A concurrent write by
// another node wins; this node reloads the profile and merges on its next
// change.
func (g *Guard) saveProfiles(ctx context.Context) error {
	g.mu.Lock()
	var todo []*profile
	for _, p := range g.profiles {
		if p.dirty && p.loaded {
			cp := *p
			todo = append(todo, &cp)
			p.dirty = false
		}
	}
	g.mu.Unlock()
	for _, p := range todo {
		b, _ := json.Marshal(p)
		err := g.store.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindGuardProfile, ID: p.Principal, Org: p.Org, Version: p.version + 1, Body: b, Updated: g.now().UTC()})
		g.mu.Lock()
		if cur := g.profiles[p.Principal]; cur != nil {
			if err == nil {
				cur.version = p.version + 1
			} else if sekisho.Code(err) == sekisho.EConflict {
				delete(g.profiles, p.Principal) // reload from the store next time
			}
		}
		g.mu.Unlock()
		if err != nil && sekisho.Code(err) != sekisho.EConflict {
			return err
		}
	}
	return nil
}

// lookupVal is one lookup value a principal asked for.
type lookupVal struct {
	field string
	num   int64  // the value's digits as a number; -1 when it has none
	sum   uint64 // a hash of the whole value (distinct values per minute)
	at    int64
}

// observeLookup sees the field and normalised value of a lookup (Check,
// for a request with a Lookup: the vault passes the value after
// normalisation, so full-width or Arabic-Indic digits, spaces and dashes
// are seen as the number they spell, on every path: HTTP, CLI, import). It
// refuses a quarantined caller, and raises the enumeration rule on a run of
// values in arithmetic progression with any stride (run values with one
// common difference), on values each within max_gap of a recent one, and
// on more than lookup_values_per_minute distinct values in a minute (most
// of an enumeration's lookups match nothing, so matched subjects alone
// miss it). It returns the refusal, or ok.
func (g *Guard) observeLookup(ctx context.Context, c sekisho.Caller, collection string, lv *sekisho.LookupValue, rules map[string]*Rule) (sekisho.Decision, bool) {
	if err := g.Quarantined(ctx, c.Principal, c.Device, time.Time{}); err != nil {
		return sekisho.Decision{Policy: "guard:quarantine", Reason: sekisho.Message(err), Code: sekisho.EForbidden, Type: ProblemQuarantined}, false
	}
	r := rules[RuleEnumeration]
	if r == nil || !r.Enabled {
		return sekisho.Decision{}, true
	}
	h := fnv.New64a()
	h.Write([]byte(lv.Value))
	v := lookupVal{field: collection + "." + lv.Field, num: digits(lv.Value), sum: h.Sum64()}
	g.mu.Lock()
	detail := g.enumerationLocked(c.Principal, v, g.now(), r)
	g.mu.Unlock()
	if detail == "" {
		return sekisho.Decision{}, true
	}
	g.fire(ctx, c, r, r.Action, detail)
	d := sekisho.Decision{Policy: "guard:" + RuleEnumeration, Code: sekisho.EForbidden}
	switch r.Action {
	case ActionQuarantine:
		d.Type, d.Reason = ProblemQuarantined, fmt.Sprintf("quarantined by the guard (%s)", detail)
	case ActionStepUp:
		d.Type, d.Reason = ProblemStepUp, fmt.Sprintf("this request is unusual for you (%s); ask an admin of your org for an approved access request, then retry", detail)
	default:
		return sekisho.Decision{}, true
	}
	return d, false
}

// digits reads the last 15 digits of s as a number (phone numbers, ids
// with numeric parts), or -1.
func digits(s string) int64 {
	var d []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			d = append(d, s[i])
		}
	}
	if len(d) == 0 {
		return -1
	}
	if len(d) > 15 {
		d = d[len(d)-15:]
	}
	var n int64
	for _, c := range d {
		n = n*10 + int64(c-'0')
	}
	return n
}

// sequentialLocked adds lv to the principal's recent lookups and returns
// how many lookups in a row (within ten minutes) were each within max_gap
// of an earlier recent value of the same field.
// maxLookupsKept bounds the recent lookups kept per principal.
const maxLookupsKept = 64

// enumerationLocked records lv and says why the principal's recent
// lookups look like an enumeration, or "".
func (g *Guard) enumerationLocked(principal string, lv lookupVal, now time.Time, r *Rule) string {
	lv.at = now.UnixNano()
	gap := int64(r.param("max_gap", 16))
	run := int(r.param("run", 5))
	perMinute := int(r.param("lookup_values_per_minute", 30))
	recent := g.lookups[principal]
	cut := lv.at - int64(10*time.Minute)
	kept := recent[:0]
	for _, x := range recent {
		if x.at > cut {
			kept = append(kept, x)
		}
	}
	kept = append(kept, lv)
	if len(kept) > maxLookupsKept {
		kept = kept[len(kept)-maxLookupsKept:]
	}
	g.lookups[principal] = kept
	// Distinct values of this field in the last minute.
	minute := lv.at - int64(time.Minute)
	distinct := map[uint64]bool{}
	var nums []int64 // this field's numeric values, oldest first
	for _, x := range kept {
		if x.field != lv.field {
			continue
		}
		if x.at > minute {
			distinct[x.sum] = true
		}
		if x.num >= 0 {
			nums = append(nums, x.num)
		}
	}
	if len(distinct) > perMinute {
		return fmt.Sprintf("%d distinct values of %s looked up in a minute", len(distinct), lv.field)
	}
	if lv.num < 0 || len(nums) < run {
		return ""
	}
	// The last run values in arithmetic progression, any stride.
	last := nums[len(nums)-run:]
	step := last[1] - last[0]
	progression := step != 0
	for i := 2; i < len(last) && progression; i++ {
		progression = last[i]-last[i-1] == step
	}
	if progression {
		return fmt.Sprintf("%d values of %s looked up in a row with stride %d", run, lv.field, abs(step))
	}
	// Or each within max_gap of one before it.
	near := 0
	for i := len(nums) - 1; i >= 0; i-- {
		ok := false
		for j := 0; j < i; j++ {
			if nums[j] != nums[i] && abs(nums[j]-nums[i]) <= gap {
				ok = true
				break
			}
		}
		if !ok {
			break
		}
		near++
	}
	if near+1 >= run {
		return fmt.Sprintf("%d near-sequential values of %s looked up in a row", near+1, lv.field)
	}
	return ""
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

type zoneEntry struct {
	loc *time.Location
	at  time.Time
}

// orgLocation returns the time zone of org: its time_zone when it set one,
// else the configured default (the server's local zone). A zone is cached
// for a minute; a store failure or an unknown name falls back to the
// default (the off-hours rule only alerts).
func (g *Guard) orgLocation(ctx context.Context, org string) *time.Location {
	now := g.now()
	g.zmu.Lock()
	e, ok := g.zcache[org]
	g.zmu.Unlock()
	if ok && now.Sub(e.at) < time.Minute && now.Sub(e.at) >= 0 {
		return e.loc
	}
	e = zoneEntry{loc: g.cfg.Location, at: now}
	if g.cfg.Directory != nil {
		if o, err := g.cfg.Directory.Org(ctx, org); err == nil && o.TimeZone != "" {
			if loc, err := time.LoadLocation(o.TimeZone); err == nil {
				e.loc = loc
			}
		}
	}
	g.zmu.Lock()
	if len(g.zcache) > 10_000 {
		clear(g.zcache)
	}
	g.zcache[org] = e
	g.zmu.Unlock()
	return e.loc
}
