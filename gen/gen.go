// Package gen generates realistic, deterministic records for the default
// collections (users, partners, employees) across the regions jp, th, tw and
// id: for imports, benchmarks, tests and the demo. Every value it makes
// passes the schema's validation (phone numbers are valid numbering-plan
// numbers of their region).
package gen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/sekisho/sekisho"
)

// Regions the generator spreads records over, with their weights (the
// operator's user base: 93M jp, 53M th, 22M tw, 8M id).
var Regions = []struct {
	Code   string
	Weight int
}{{"jp", 93}, {"th", 53}, {"tw", 22}, {"id", 8}}

// Generator makes records from a seed; the same seed gives the same records.
type Generator struct {
	r *rand.Rand
	n uint64
}

// New returns a generator seeded with seed.
func New(seed uint64) *Generator {
	return &Generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

var (
	givenJP  = []string{"Sakura", "Haruto", "Yui", "Sota", "Hina", "Ren", "Aoi", "Yuto", "Mei", "Riku"}
	familyJP = []string{"Tanaka", "Suzuki", "Takahashi", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi", "Kato", "Sato"}
	givenTH  = []string{"Somchai", "Ploy", "Anan", "Nok", "Kittisak", "Malee", "Niran", "Siriporn"}
	familyTH = []string{"Srisuk", "Wongsa", "Chaiyaporn", "Rattanakul", "Boonmee", "Saetang"}
	givenTW  = []string{"Wei", "Yi-Ting", "Chia-Hao", "Hsin-Yi", "Jun", "Pei-Shan"}
	familyTW = []string{"Chen", "Lin", "Huang", "Chang", "Lee", "Wang"}
	givenID  = []string{"Budi", "Siti", "Agus", "Dewi", "Rizky", "Putri"}
	familyID = []string{"Santoso", "Wijaya", "Hidayat", "Saputra", "Lestari", "Pratama"}
	depts    = []string{"Engineering", "Trust & Safety", "Customer Support", "Finance", "HR", "Sales", "Legal", "Security"}
	bands    = []string{"B1", "B2", "B3", "B4", "B5", "M1", "M2"}
	genders  = []string{"female", "male", "nonbinary", "undisclosed"}
	corpSfx  = []string{"Co., Ltd.", "K.K.", "Public Co.", "Inc.", "PT", "Corp."}
	corpWord = []string{"Sakura", "Lotus", "Harbor", "Sunrise", "Blue Sky", "Golden", "Jade", "Coral"}
)

// Region picks a region by weight.
func (g *Generator) Region() string {
	n := g.r.IntN(176)
	for _, r := range Regions {
		if n < r.Weight {
			return r.Code
		}
		n -= r.Weight
	}
	return "jp"
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func (g *Generator) name(region string) string {
	switch region {
	case "th":
		return pick(g.r, givenTH) + " " + pick(g.r, familyTH)
	case "tw":
		return pick(g.r, familyTW) + " " + pick(g.r, givenTW)
	case "id":
		return pick(g.r, givenID) + " " + pick(g.r, familyID)
	}
	return pick(g.r, givenJP) + " " + pick(g.r, familyJP)
}

// Phone returns a valid mobile number of region in E.164.
func (g *Generator) Phone(region string) string {
	switch region {
	case "th":
		return fmt.Sprintf("+668%d%07d", 1+g.r.IntN(9), g.r.IntN(10000000))
	case "tw":
		return fmt.Sprintf("+8869%08d", g.r.IntN(100000000))
	case "id":
		return fmt.Sprintf("+628%d%08d", 1+g.r.IntN(3), g.r.IntN(100000000))
	}
	return fmt.Sprintf("+81%d0%d%07d", 7+g.r.IntN(3), 1+g.r.IntN(9), g.r.IntN(10000000))
}

func (g *Generator) email(name, domain string) string {
	g.n++
	return fmt.Sprintf("u%d.%x@%s", g.n, g.r.Uint32(), domain)
}

func raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// User returns a user record.
func (g *Generator) User() *sekisho.RecordInput {
	region := g.Region()
	name := g.name(region)
	country := map[string]string{"jp": "JP", "th": "TH", "tw": "TW", "id": "ID"}[region]
	return &sekisho.RecordInput{Region: region, Fields: map[string]json.RawMessage{
		"display_name":     raw(name),
		"phone":            raw(g.Phone(region)),
		"email":            raw(g.email(name, "mail.example")),
		"birth_date":       raw(fmt.Sprintf("%04d-%02d-%02d", 1950+g.r.IntN(55), 1+g.r.IntN(12), 1+g.r.IntN(28))),
		"gender":           raw(pick(g.r, genders)),
		"country":          raw(country),
		"internal_user_id": raw(fmt.Sprintf("u%016x", g.r.Uint64())),
		"usage_summary":    raw(map[string]int{"calls_per_week": g.r.IntN(60), "stickers_bought": g.r.IntN(40)}),
	}}
}

// Partner returns a business partner record.
func (g *Generator) Partner() *sekisho.RecordInput {
	region := g.Region()
	return &sekisho.RecordInput{Region: region, Fields: map[string]json.RawMessage{
		"company":        raw(pick(g.r, corpWord) + " " + pick(g.r, corpWord) + " " + pick(g.r, corpSfx)),
		"contact_person": raw(g.name(region)),
		"phone":          raw(g.Phone(region)),
		"email":          raw(g.email("", "partner.example")),
		"bank_account":   raw(fmt.Sprintf("%04d-%03d-%07d", g.r.IntN(10000), g.r.IntN(1000), g.r.IntN(10000000))),
	}}
}

// Employee returns an employee record.
func (g *Generator) Employee() *sekisho.RecordInput {
	region := g.Region()
	return &sekisho.RecordInput{Region: region, Fields: map[string]json.RawMessage{
		"name":            raw(g.name(region)),
		"employee_number": raw(fmt.Sprintf("E%07d", g.r.IntN(10000000))),
		"department":      raw(pick(g.r, depts)),
		"email":           raw(g.email("", "corp.example")),
		"phone":           raw(g.Phone(region)),
		"address":         raw(fmt.Sprintf("%d-%d-%d Example-cho, %s", 1+g.r.IntN(9), 1+g.r.IntN(30), 1+g.r.IntN(20), region)),
		"salary_band":     raw(pick(g.r, bands)),
	}}
}

// Record returns a record of the named default collection.
func (g *Generator) Record(collection string) (*sekisho.RecordInput, error) {
	switch collection {
	case "users":
		return g.User(), nil
	case "partners":
		return g.Partner(), nil
	case "employees":
		return g.Employee(), nil
	}
	return nil, fmt.Errorf("gen: no generator for collection %q (users, partners, employees)", collection)
}
