package schemas

import "testing"

func TestDefaultsParse(t *testing.T) {
	got, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"users":     {"display_name", "phone", "email", "birth_date", "gender", "country", "usage_summary"},
		"partners":  {"company", "contact_person", "phone", "email", "bank_account"},
		"employees": {"name", "employee_number", "department", "email", "phone", "address", "salary_band"},
	}
	for _, s := range got {
		for _, f := range want[s.Collection] {
			if _, ok := s.Field(f); !ok {
				t.Errorf("%s lacks field %s", s.Collection, f)
			}
		}
		delete(want, s.Collection)
	}
	if len(want) != 0 {
		t.Errorf("missing default collections: %v", want)
	}
}
