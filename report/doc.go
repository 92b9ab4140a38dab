// Package report turns an incident and its scope into the reports the
// regulators ask for, and the store's configuration into the periodic
// progress report:
//
//   - appi: Japan, Act on the Protection of Personal Information, art. 26
//     and the PPC's Enforcement Rules art. 7 and 8: the report to the
//     Personal Information Protection Commission (preliminary and final);
//   - pdpa: Thailand, Personal Data Protection Act B.E. 2562, s. 37(4):
//     notice to the PDPC Office within 72 hours of awareness;
//   - pdp-id: Indonesia, Law 27 of 2022 on Personal Data Protection, art. 46:
//     notice to the persons and the authority within 3 x 24 hours;
//   - pdpa-tw: Taiwan, Personal Data Protection Act, art. 12 and Enforcement
//     Rules art. 22: notice to the persons;
//   - gdpr: GDPR art. 33 notification to the supervisory authority, as the
//     reference form;
//   - progress: the periodic progress report on the controls in place and
//     their coverage.
//
// A Report is data (kind, deadlines, items, tables); Markdown, JSON and PDF
// render the same Report. Each item says where its content comes from: the
// scope (computed from the audit log), the incident as recorded, the store,
// or a person. What sekisho cannot know (secondary damage, the notification
// of persons, the public announcement, ...) is an item whose source is
// "person", rendered with a clear "to be completed" mark, never guessed.
//
// This is a drafting aid, not legal advice: the person filing a report checks
// the regime's current form and thresholds.
package report
