package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sekisho/sekisho"
)

// Languages a report is written in.
const (
	LangEN = "en"
	LangJA = "ja"
	LangTH = "th"
)

// Langs lists the languages of each report kind, the default first: the
// regulator's language where sekisho has the form in it, English always.
var Langs = map[string][]string{
	KindAPPI:     {LangJA, LangEN},
	KindPDPA:     {LangTH, LangEN},
	KindPDPID:    {LangEN},
	KindPDPATW:   {LangEN},
	KindGDPR:     {LangEN},
	KindProgress: {LangEN},
	KindAccess:   {LangEN, LangJA},
	KindProvide:  {LangEN, LangJA},
}

// Lang checks lang for kind and returns it, or the kind's default when lang
// is empty.
func Lang(kind, lang string) (string, error) {
	ls := Langs[kind]
	if len(ls) == 0 {
		ls = []string{LangEN}
	}
	if lang == "" {
		return ls[0], nil
	}
	if !slices.Contains(ls, lang) {
		return "", sekisho.FieldErrorf(sekisho.EInvalid, "lang", "report %s is written in %s, not %q", kind, strings.Join(ls, ", "), lang)
	}
	return lang, nil
}

// msg returns the message key in lang with args, falling back to English.
func msg(lang, key string, args ...any) string {
	s, ok := messages[lang][key]
	if !ok {
		s, ok = messages[LangEN][key]
	}
	if !ok {
		return key
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// ToCompleteMarks is the mark of what a person must fill in, per language.
var ToCompleteMarks = map[string]string{
	LangEN: ToCompleteMark,
	LangJA: "要記入（担当者が記入）",
	LangTH: "ผู้รับผิดชอบต้องกรอก",
}

// messages are the words of the reports. Every key has an English text; a
// language may leave a key out (the English text is used).
var messages = map[string]map[string]string{
	LangEN: {
		"source.log": "the audit log",
		"pr.title":   "Record of provision of personal data to third parties",
		"pr.law":     "APPI art. 29 (record of provision to third parties) and art. 30 (confirmation on receipt); PPC Enforcement Rules arts. 19 to 24",
		"pr.to":      "Kept by the controller; shown to the PPC or, under art. 33(5), to the person on request",
		"pr.summary": "Provisions in the period", "pr.summary.text": "From the audit log, the provisions of organisation %s's records between %s and %s: %d provisions to %d recipient organisations (%s), concerning %d distinct persons.",
		"pr.recipients": "Recipients' names and addresses", "pr.recipients.todo": "The name and address of each recipient organisation (and its representative), and whether the person consented or the provision is under entrustment (art. 27(5)).",
		"pr.table": "Provisions", "pr.col.date": "date", "pr.col.recipient": "recipient org", "pr.col.purpose": "purpose", "pr.col.subjects": "persons",
		"pr.col.ids": "persons (record ids)", "pr.col.items": "items", "pr.col.event": "event",
		"pr.note":    "Every row is one allowed audit event (index shown) in which a principal of the recipient org was returned field values of these records; the audit logs read (name and size): %s.",
		"sa.title":   "Subject access report: the personal data held and every access to it",
		"sa.law":     "APPI art. 33 (disclosure of retained personal data and of the records of provision); GDPR art. 15 (right of access)",
		"sa.to":      "The data subject (through the officer who asked)",
		"sa.because": "the data subject asked what is held about them and who accessed it",
		"sa.record":  "The record", "sa.record.text": "Collection %s, record %s, residency region %s: %d fields held, listed below as stored (opened for this report and audited under purpose subject-access).",
		"sa.accesses": "Accesses from the audit log", "sa.accesses.text": "%d events name this record: %d allowed, %d refused. Organisations that accessed it: %s. Each event below has its index in the audit log and an RFC 6962 inclusion proof in the tree of the signed checkpoint of size %d.",
		"sa.purposes": "Purposes of use and recipients", "sa.purposes.todo": "The purposes of use stated to the person, and the third parties the data was provided to under contract (see also `sekisho report provision`).",
		"sa.data": "The data held", "sa.consents": "Consents", "sa.log": "Every access", "sa.proofs": "Inclusion proofs",
		"sa.consenthistory": "Consent history (every change, oldest first)", "sa.col.at": "changed at", "sa.col.given": "given",
		"sa.col.withdrawn": "withdrawn", "sa.col.by": "changed by",
		"sa.col.field": "field", "sa.col.value": "value", "sa.col.purpose": "purpose", "sa.col.consent": "consent", "sa.col.index": "event",
		"sa.col.time": "time", "sa.col.org": "org", "sa.col.kind": "principal kind", "sa.col.action": "action", "sa.col.fields": "fields",
		"sa.col.decision": "decision", "sa.col.proof": "proof (base64 SHA-256 hashes, leaf to root)",
		"sa.noproof":     "after the checkpoint: ask GET /v1/audit/proof/inclusion later",
		"sa.checkpoint":  "Signed checkpoint",
		"sa.note.verify": "Check a proof with any RFC 6962 verifier (transparency-dev/merkle proof.VerifyInclusion): the leaf hash of the event (GET /v1/audit/events) with its index, tree size %d and the root hash of the signed checkpoint below, signed with the key of GET /v1/audit/verifier-key.",
		"law":            "Law", "to": "To", "controller": "Controller", "incident": "Incident", "generated": "Generated",
		"required": "Report required", "required.no": "no, as far as the audit log shows", "required.yes": "yes: ",
		"persons": "Persons concerned", "persons.confirmed": "confirmed (values returned)", "persons.possible": "possible (touched, nothing returned)",
		"persons.total": "total", "persons.in": "of which in %s", "persons.worst": "worst case (readable by the suspects)",
		"persons.confirmed.short": "confirmed", "persons.possible.short": "possible", "persons.in.short": "in %s", "persons.worst.short": "worst case",
		"deadlines": "Deadlines", "deadline.report": "report", "deadline.due": "due", "deadline.basis": "basis", "passed": " (passed)",
		"source": "Source: %s.", "notes": "Notes", "none": "None.",
		"source.scope":    "the incident's scope, computed from the audit log",
		"source.incident": "the incident as recorded",
		"source.store":    "the vault's store",
		"source.config":   "the report's configuration",
		"source.person":   "what the vault knows; a person completes it",
		"footer":          "sekisho %s report, incident %s - page %d/{nb}",
		"footer.noinc":    "sekisho %s report - page %d/{nb}",
		"who.principals":  "principals %s", "who.devices": "devices %s", "who.orgs": "organisations %s",
		"overview":         "Between %s and %s, %s acted on personal data held in the vault. The incident was discovered at %s (cause recorded: %s). ",
		"overview.counts":  "The audit log shows %d data subjects whose field values were returned (%d field values), %d more touched without a value returned, and %d attempts refused by the vault.",
		"kinds.none":       "No field value was returned to the suspects.",
		"kinds.part":       "%s (%d persons): %s",
		"kinds":            "Fields returned, by classification: %s.",
		"kinds.sensitive":  " Sensitive data is involved.",
		"number":           "%d persons confirmed (values returned) and %d possibly affected (touched without values returned): %d in total.",
		"number.region":    " Of them, %d are data subjects resident in %s.",
		"number.worst":     " In the worst case the suspects could have read %d records under the roles and grants they held.",
		"cause":            "Recorded cause: %s. %d of the suspects' requests were refused by the vault (default deny, grants, budgets).",
		"cause.todo":       "How the credentials or devices were obtained and how the attacker got in (forensics of the machines concerned).",
		"measures":         "Controls in place in the vault: every record sealed under its own key; every credential bound to an enrolled device; access across organisations only through explicit grants; every decision in a tamper-evident audit log (see the progress report).",
		"measures.todo":    "Revocations done (principals, devices, grants), and the measures decided to prevent recurrence, with dates.",
		"reporter":         "Name: %s.",
		"reporter.address": " Address: %s.", "reporter.contact": " Contact point: %s.", "reporter.representative": " Representative: %s.",
		"reporter.todo":         "The reporter's name, address, representative and contact point (set them once: the controller section of the configuration, or the org profile).",
		"reporter.partial":      "What the configuration does not give: address, representative or contact point.",
		"note.numbers":          "Every number comes from the audit log (%d events of the suspects in the window, log size %d); the per-subject list with the audit event indexes behind each subject is `sekisho incident scope --incident %s --format subjects` (CSV), and each event's inclusion proof is GET /v1/audit/proof/inclusion?index=N&size=%d.",
		"note.logs":             "Each region keeps its events in the log of its own store; the logs read, with their sizes: %s. Ask each event's inclusion proof of its region's log: GET /v1/audit/proof/inclusion?region=LOG&index=N&size=S (the subjects CSV gives each subject's event_log and log_size).",
		"note.draft":            "A draft for the person who files it: check the regulator's current form and thresholds before filing.",
		"note.appi.notrequired": "By the scope alone none of the mandatory conditions holds; a person checks the others (data whose misuse may cause financial damage, an unauthorized purpose).",
		"table.collection":      "By collection", "table.region": "By region", "table.class": "By classification",
		"col.collection": "collection", "col.persons.confirmed": "persons confirmed", "col.fields": "field values", "col.persons.possible": "persons possible",
		"col.denied": "denied attempts", "col.fieldnames": "fields", "col.region": "region", "col.country": "country", "col.class": "classification",

		"appi.title":      "Report of a personal data breach to the Personal Information Protection Commission",
		"appi.law":        "Japan: Act on the Protection of Personal Information (APPI) art. 26; PPC Enforcement Rules art. 7 and 8",
		"appi.to":         "Personal Information Protection Commission (PPC)",
		"appi.why.1000":   "more than 1,000 persons are affected (%d)",
		"appi.why.sens":   "sensitive personal data (special care-required) is involved",
		"appi.why.unauth": "the cause is unauthorized access (%s)",
		"appi.prelim":     "Preliminary report", "appi.final": "Final report",
		"appi.prelim.basis": "Enforcement Rules art. 8(1): promptly, about 3 to 5 days from awareness (the latest of that range is shown)",
		"appi.final.30":     "Enforcement Rules art. 8(2): within 30 days of awareness",
		"appi.final.60":     "Enforcement Rules art. 8(2): within 60 days of awareness where the breach was caused by unauthorized access",
		"appi.1":            "1. Reporter",
		"appi.2":            "2. Overview of the incident",
		"appi.3":            "3. Items of the personal data breached",
		"appi.4":            "4. Number of persons",
		"appi.5":            "5. Cause",
		"appi.6":            "6. Secondary damage or its risk, and its content",
		"appi.6.todo":       "Whether secondary damage occurred or may occur (fraud, phishing, publication of the data), and what it is.",
		"appi.7":            "7. Response to the persons",
		"appi.7.todo":       "Whether and when the persons were notified or will be (`sekisho incident notices --incident ID --out DIR` writes the lists and notice texts per region).",
		"appi.8":            "8. Public announcement",
		"appi.8.todo":       "Whether and when the incident was or will be announced publicly.",
		"appi.9":            "9. Measures to prevent recurrence",
		"appi.10":           "10. Other matters for reference",
		"appi.10.todo":      "Reports to other authorities (police, other countries' regulators).",

		"pdpa.title":    "Notification of a personal data breach to the Office of the Personal Data Protection Committee",
		"pdpa.law":      "Thailand: Personal Data Protection Act B.E. 2562 (2019) s. 37(4); PDPC notification on breach notification (2022)",
		"pdpa.to":       "Office of the Personal Data Protection Committee (PDPC)",
		"pdpa.why":      "%d data subjects resident in Thailand are concerned; notify unless the breach is unlikely to result in a risk to their rights and freedoms",
		"pdpa.deadline": "Notice to the PDPC Office",
		"pdpa.basis":    "s. 37(4): without delay and within 72 hours of becoming aware",
		"pdpa.overview": "Details of the breach", "pdpa.kinds": "Personal data concerned", "pdpa.persons": "Number of data subjects and records",
		"pdpa.consequences":      "Likely consequences",
		"pdpa.consequences.todo": "The risk to the data subjects' rights and freedoms; whether it is high (then the data subjects are notified too, without delay).",
		"pdpa.measures":          "Measures taken or proposed",
		"contact":                "Contact point (data protection officer)",
		"contact.todo":           "Name and contact details of the data protection officer or contact point.",
	},
	LangJA: {
		"source.log": "監査ログ",
		"pr.title":   "第三者提供に係る記録",
		"pr.law":     "個人情報の保護に関する法律 第29条（第三者提供に係る記録の作成等）及び第30条、同法施行規則 第19条から第24条",
		"pr.to":      "個人情報取扱事業者が保存（個人情報保護委員会、又は第33条第5項により本人の請求に応じて開示）",
		"pr.summary": "期間内の提供", "pr.summary.text": "監査ログによれば、組織 %s のレコードの %s から %s までの提供は %d 件、提供先は %d 組織（%s）、対象となった本人は %d 人である。",
		"pr.recipients": "提供先の氏名又は名称及び住所", "pr.recipients.todo": "各提供先組織の名称、住所（及び代表者）、本人の同意の有無又は委託に伴う提供（第27条第5項）か否か。",
		"pr.table": "提供の記録", "pr.col.date": "提供日", "pr.col.recipient": "提供先", "pr.col.purpose": "目的", "pr.col.subjects": "本人の数",
		"pr.col.ids": "本人（レコード ID）", "pr.col.items": "項目", "pr.col.event": "イベント",
		"pr.note":    "各行は監査ログ上の許可されたイベント 1 件（番号を表示）であり、提供先組織のプリンシパルにこれらのレコードの項目の値が返されたことを示す。読み取った監査ログ（名前とサイズ）：%s。",
		"sa.title":   "保有個人データの開示及びアクセス記録の報告",
		"sa.law":     "個人情報の保護に関する法律 第33条（保有個人データ及び第三者提供記録の開示）、GDPR 第15条",
		"sa.to":      "本人（請求を受けた担当者を通じて）",
		"sa.because": "本人から保有個人データとそのアクセス記録の開示の請求があった",
		"sa.record":  "対象レコード", "sa.record.text": "コレクション %s、レコード %s、保管地域 %s：保有する項目は %d 件（下表。本報告のため目的 subject-access で開示し、監査ログに記録済み）。",
		"sa.accesses": "監査ログ上のアクセス", "sa.accesses.text": "このレコードを対象とするイベントは %d 件（許可 %d 件、拒否 %d 件）。アクセスした組織：%s。各イベントには監査ログ上の番号と、サイズ %d の署名済みチェックポイントにおける RFC 6962 包含証明を付す。",
		"sa.purposes": "利用目的及び提供先", "sa.purposes.todo": "本人に通知又は公表した利用目的と、契約に基づく第三者提供先（`sekisho report provision` も参照）。",
		"sa.data": "保有個人データ", "sa.consents": "同意", "sa.log": "アクセス記録", "sa.proofs": "包含証明",
		"sa.consenthistory": "同意の履歴（変更の全件、古い順）", "sa.col.at": "変更日時", "sa.col.given": "同意日時",
		"sa.col.withdrawn": "撤回日時", "sa.col.by": "変更者",
		"sa.col.field": "項目", "sa.col.value": "値", "sa.col.purpose": "目的", "sa.col.consent": "同意", "sa.col.index": "イベント",
		"sa.col.time": "日時", "sa.col.org": "組織", "sa.col.kind": "主体の種類", "sa.col.action": "操作", "sa.col.fields": "項目",
		"sa.col.decision": "判断", "sa.col.proof": "証明（base64 の SHA-256 ハッシュ、葉から根へ）",
		"sa.noproof":     "チェックポイント以降のイベント：後で GET /v1/audit/proof/inclusion で取得",
		"sa.checkpoint":  "署名済みチェックポイント",
		"sa.note.verify": "証明は RFC 6962 の検証器（transparency-dev/merkle の proof.VerifyInclusion）で確認できる：イベントの葉ハッシュ（GET /v1/audit/events）、その番号、木のサイズ %d、下記の署名済みチェックポイントの根ハッシュ（署名鍵は GET /v1/audit/verifier-key）。",
		"law":            "根拠法令", "to": "提出先", "controller": "個人情報取扱事業者", "incident": "インシデント", "generated": "作成日時",
		"required": "報告義務", "required.no": "監査ログの範囲では該当なし", "required.yes": "あり：",
		"persons": "本人の数", "persons.confirmed": "確定（値が返された）", "persons.possible": "おそれ（接触のみ、値は返されていない）",
		"persons.total": "合計", "persons.in": "うち %s", "persons.worst": "最大の場合（被疑者が読み得た数）",
		"persons.confirmed.short": "確定", "persons.possible.short": "おそれ", "persons.in.short": "うち %s", "persons.worst.short": "最大の場合",
		"deadlines": "報告期限", "deadline.report": "報告", "deadline.due": "期限", "deadline.basis": "根拠", "passed": "（経過）",
		"source": "出典：%s。", "notes": "注記", "none": "なし。",
		"source.scope":    "監査ログから算出したインシデントの範囲",
		"source.incident": "記録されたインシデント",
		"source.store":    "ボールトのストア",
		"source.config":   "報告の設定（管理者情報）",
		"source.person":   "ボールトが把握している事項。担当者が補足する",
		"footer":          "sekisho %s 報告書 インシデント %s - ページ %d/{nb}",
		"footer.noinc":    "sekisho %s 報告書 - ページ %d/{nb}",
		"who.principals":  "プリンシパル %s", "who.devices": "デバイス %s", "who.orgs": "組織 %s",
		"overview":         "%s から %s までの間、%s が本ボールトに保管された個人データにアクセスした。%s に事態を把握した（記録された原因：%s）。",
		"overview.counts":  "監査ログによれば、項目の値が返された本人は %d 人（項目値 %d 件）、値は返されずに接触のみされた本人は %d 人、ボールトが拒否した試行は %d 件である。",
		"kinds.none":       "被疑者に項目の値は返されていない。",
		"kinds.part":       "%s（%d 人）：%s",
		"kinds":            "返された項目（分類別）：%s。",
		"kinds.sensitive":  "要配慮個人情報が含まれる。",
		"number":           "確定 %d 人（値が返された）、おそれ %d 人（値は返されずに接触のみ）、合計 %d 人。",
		"number.region":    "うち %d 人は %s に居住する本人である。",
		"number.worst":     "最大の場合、被疑者は保有していた権限とグラントの下で %d 件のレコードを読み得た。",
		"cause":            "記録された原因：%s。被疑者の要求のうち %d 件はボールトにより拒否された（既定拒否、グラント、上限）。",
		"cause.todo":       "認証情報やデバイスがどのように入手され、攻撃者がどのように侵入したか（関係端末のフォレンジック調査）。",
		"measures":         "ボールトで実施済みの管理策：全レコードをレコードごとの鍵で暗号化、全認証情報を登録済みデバイスに紐付け、組織をまたぐアクセスは明示的なグラントのみ、全ての判断を改ざん検知可能な監査ログに記録（進捗報告を参照）。",
		"measures.todo":    "実施した失効措置（プリンシパル、デバイス、グラント）と、決定した再発防止策及びその実施日。",
		"reporter":         "名称：%s。",
		"reporter.address": "住所：%s。", "reporter.contact": "連絡先：%s。", "reporter.representative": "代表者：%s。",
		"reporter.todo":         "報告者の名称、住所、代表者及び連絡先（設定ファイルの controller 欄又は組織プロファイルで一度設定する）。",
		"reporter.partial":      "設定に含まれない事項：住所、代表者又は連絡先。",
		"note.numbers":          "数値は全て監査ログによる（対象期間内の被疑者のイベント %d 件、ログサイズ %d）。本人ごとの一覧と各本人の根拠となる監査イベント番号は `sekisho incident scope --incident %s --format subjects`（CSV）、各イベントの包含証明は GET /v1/audit/proof/inclusion?index=N&size=%d で得られる。",
		"note.logs":             "各地域のイベントはその地域のストアの監査ログにある。読んだログとサイズ: %s。各イベントの包含証明はその地域のログに求める: GET /v1/audit/proof/inclusion?region=LOG&index=N&size=S（本人一覧CSVの event_log と log_size）。",
		"note.draft":            "提出担当者のための下書きである。提出前に個人情報保護委員会の最新の様式と基準を確認すること。",
		"note.appi.notrequired": "範囲の情報のみでは報告義務の要件に該当しない。その他の要件（財産的被害が生じるおそれのある個人データ、不正の目的によるおそれ）は担当者が確認する。",
		"table.collection":      "コレクション別", "table.region": "地域別", "table.class": "分類別",
		"col.collection": "コレクション", "col.persons.confirmed": "本人（確定）", "col.fields": "項目値", "col.persons.possible": "本人（おそれ）",
		"col.denied": "拒否された試行", "col.fieldnames": "項目", "col.region": "地域", "col.country": "国", "col.class": "分類",

		"appi.title":      "個人データの漏えい等の報告（個人情報保護委員会）",
		"appi.law":        "個人情報の保護に関する法律 第26条第1項、同法施行規則 第7条及び第8条",
		"appi.to":         "個人情報保護委員会",
		"appi.why.1000":   "漏えい等が発生し、又は発生したおそれがある本人の数が1,000人を超える（%d 人）",
		"appi.why.sens":   "要配慮個人情報が含まれる",
		"appi.why.unauth": "不正アクセス等の不正の目的をもって行われたおそれがある（%s）",
		"appi.prelim":     "速報", "appi.final": "確報",
		"appi.prelim.basis": "施行規則第8条第1項：速やかに（概ね3〜5日以内。その上限を表示）",
		"appi.final.30":     "施行規則第8条第2項：事態を知った日から30日以内",
		"appi.final.60":     "施行規則第8条第2項：不正の目的をもって行われたおそれがある場合は60日以内",
		"appi.1":            "報告者",
		"appi.2":            "事案の概要",
		"appi.3":            "漏えい等が発生し、又は発生したおそれがある個人データの項目",
		"appi.4":            "漏えい等が発生し、又は発生したおそれがある個人データに係る本人の数",
		"appi.5":            "原因",
		"appi.6":            "二次被害又はそのおそれの有無及びその内容",
		"appi.6.todo":       "二次被害（不正利用、フィッシング、データの公開等）の発生又はそのおそれの有無と、その内容。",
		"appi.7":            "本人への対応の実施状況",
		"appi.7.todo":       "本人への通知の有無と時期（地域ごとの通知先一覧と通知文は `sekisho incident notices --incident ID --out DIR` で作成できる）。",
		"appi.8":            "公表の実施状況",
		"appi.8.todo":       "公表の有無と時期。",
		"appi.9":            "再発防止のための措置",
		"appi.10":           "その他参考となる事項",
		"appi.10.todo":      "他の機関（警察、外国の監督機関等）への報告の状況。",
		"contact":           "連絡先（個人データ保護責任者）",
		"contact.todo":      "個人データ保護責任者又は窓口の氏名と連絡先。",
	},
	LangTH: {
		"source.log": "บันทึกการตรวจสอบ",
		"law":        "กฎหมาย", "to": "ถึง", "controller": "ผู้ควบคุมข้อมูลส่วนบุคคล", "incident": "เหตุการณ์", "generated": "จัดทำเมื่อ",
		"required": "ต้องแจ้งหรือไม่", "required.no": "ไม่ต้อง เท่าที่บันทึกการตรวจสอบแสดง", "required.yes": "ต้องแจ้ง: ",
		"persons": "เจ้าของข้อมูลที่เกี่ยวข้อง", "persons.confirmed": "ยืนยันแล้ว (มีการส่งค่าข้อมูลออกไป)", "persons.possible": "อาจได้รับผลกระทบ (ถูกเข้าถึงแต่ไม่มีการส่งค่า)",
		"persons.total": "รวม", "persons.in": "ในจำนวนนี้อยู่ใน %s", "persons.worst": "กรณีเลวร้ายที่สุด (ที่ผู้ต้องสงสัยอ่านได้)",
		"persons.confirmed.short": "ยืนยันแล้ว", "persons.possible.short": "อาจได้รับผลกระทบ", "persons.in.short": "ใน %s", "persons.worst.short": "กรณีเลวร้ายที่สุด",
		"deadlines": "กำหนดเวลา", "deadline.report": "การแจ้ง", "deadline.due": "ภายใน", "deadline.basis": "ฐานทางกฎหมาย", "passed": " (เลยกำหนดแล้ว)",
		"source": "ที่มา: %s", "notes": "หมายเหตุ", "none": "ไม่มี",
		"source.scope":    "ขอบเขตของเหตุการณ์ที่คำนวณจากบันทึกการตรวจสอบ",
		"source.incident": "เหตุการณ์ตามที่บันทึกไว้",
		"source.store":    "ที่เก็บข้อมูลของระบบ",
		"source.config":   "การตั้งค่าของรายงาน",
		"source.person":   "สิ่งที่ระบบทราบ ผู้รับผิดชอบกรอกส่วนที่เหลือ",
		"footer":          "sekisho รายงาน %s เหตุการณ์ %s - หน้า %d/{nb}",
		"footer.noinc":    "sekisho รายงาน %s - หน้า %d/{nb}",
		"who.principals":  "ผู้ใช้ %s", "who.devices": "อุปกรณ์ %s", "who.orgs": "องค์กร %s",
		"overview":        "ระหว่าง %s ถึง %s %s ได้เข้าถึงข้อมูลส่วนบุคคลที่จัดเก็บในระบบ ตรวจพบเหตุการณ์เมื่อ %s (สาเหตุที่บันทึก: %s) ",
		"overview.counts": "บันทึกการตรวจสอบแสดงว่ามีเจ้าของข้อมูล %d รายที่ค่าข้อมูลถูกส่งออกไป (%d ค่า) อีก %d รายถูกเข้าถึงโดยไม่มีการส่งค่า และระบบปฏิเสธความพยายาม %d ครั้ง",
		"kinds.none":      "ไม่มีค่าข้อมูลใดถูกส่งไปยังผู้ต้องสงสัย",
		"kinds.part":      "%s (%d ราย): %s",
		"kinds":           "ข้อมูลที่ถูกส่งออกไป แยกตามประเภท: %s",
		"kinds.sensitive": " มีข้อมูลส่วนบุคคลที่อ่อนไหวเกี่ยวข้อง",
		"number":          "ยืนยันแล้ว %d ราย (มีการส่งค่าข้อมูล) และอาจได้รับผลกระทบ %d ราย (ถูกเข้าถึงโดยไม่มีการส่งค่า) รวม %d ราย",
		"number.region":   " ในจำนวนนี้ %d รายเป็นเจ้าของข้อมูลที่อยู่ใน %s",
		"number.worst":    " ในกรณีเลวร้ายที่สุด ผู้ต้องสงสัยอาจอ่านข้อมูลได้ %d รายการภายใต้บทบาทและสิทธิ์ที่มีอยู่",
		"cause":           "สาเหตุที่บันทึก: %s คำขอของผู้ต้องสงสัย %d ครั้งถูกระบบปฏิเสธ",
		"cause.todo":      "ข้อมูลรับรองหรืออุปกรณ์ถูกได้มาอย่างไร และผู้โจมตีเข้ามาได้อย่างไร (การตรวจพิสูจน์ทางนิติวิทยาศาสตร์ของเครื่องที่เกี่ยวข้อง)",
		"measures":        "มาตรการที่มีอยู่ในระบบ: ทุกรายการถูกเข้ารหัสด้วยกุญแจของตนเอง ข้อมูลรับรองทุกชุดผูกกับอุปกรณ์ที่ลงทะเบียน การเข้าถึงข้ามองค์กรต้องผ่านการให้สิทธิ์ที่ชัดเจนเท่านั้น และทุกการตัดสินใจถูกบันทึกในบันทึกการตรวจสอบที่ตรวจจับการแก้ไขได้",
		"measures.todo":   "การเพิกถอนที่ได้ดำเนินการ (ผู้ใช้ อุปกรณ์ การให้สิทธิ์) และมาตรการป้องกันการเกิดซ้ำพร้อมวันที่",
		"reporter":        "ชื่อ: %s", "reporter.address": " ที่อยู่: %s", "reporter.contact": " ช่องทางติดต่อ: %s", "reporter.representative": " ผู้แทน: %s",
		"reporter.todo":    "ชื่อ ที่อยู่ และช่องทางติดต่อของผู้ควบคุมข้อมูล (ตั้งค่าครั้งเดียวในส่วน controller ของไฟล์การตั้งค่า หรือโปรไฟล์องค์กร)",
		"note.numbers":     "ตัวเลขทั้งหมดมาจากบันทึกการตรวจสอบ (เหตุการณ์ของผู้ต้องสงสัยในช่วงเวลา %d รายการ ขนาดบันทึก %d) รายชื่อเจ้าของข้อมูลพร้อมหมายเลขเหตุการณ์: `sekisho incident scope --incident %s --format subjects` และหลักฐานการรวมอยู่ในบันทึก: GET /v1/audit/proof/inclusion?index=N&size=%d",
		"note.logs":        "แต่ละภูมิภาคเก็บเหตุการณ์ไว้ในบันทึกของที่เก็บข้อมูลของตนเอง บันทึกที่อ่านพร้อมขนาด: %s หลักฐานการรวมอยู่ในบันทึกของภูมิภาค: GET /v1/audit/proof/inclusion?region=LOG&index=N&size=S",
		"note.draft":       "นี่เป็นร่างสำหรับผู้ยื่น โปรดตรวจสอบแบบฟอร์มและเกณฑ์ปัจจุบันของหน่วยงานก่อนยื่น",
		"table.collection": "แยกตามชุดข้อมูล", "table.region": "แยกตามภูมิภาค", "table.class": "แยกตามประเภทข้อมูล",
		"col.collection": "ชุดข้อมูล", "col.persons.confirmed": "ยืนยันแล้ว", "col.fields": "จำนวนค่า", "col.persons.possible": "อาจได้รับผลกระทบ",
		"col.denied": "ถูกปฏิเสธ", "col.fieldnames": "ฟิลด์", "col.region": "ภูมิภาค", "col.country": "ประเทศ", "col.class": "ประเภท",

		"pdpa.title":    "การแจ้งเหตุการละเมิดข้อมูลส่วนบุคคลต่อสำนักงานคณะกรรมการคุ้มครองข้อมูลส่วนบุคคล",
		"pdpa.law":      "พระราชบัญญัติคุ้มครองข้อมูลส่วนบุคคล พ.ศ. 2562 มาตรา 37(4); ประกาศคณะกรรมการฯ เรื่อง หลักเกณฑ์และวิธีการในการแจ้งเหตุการละเมิดข้อมูลส่วนบุคคล พ.ศ. 2565",
		"pdpa.to":       "สำนักงานคณะกรรมการคุ้มครองข้อมูลส่วนบุคคล (สคส.)",
		"pdpa.why":      "เจ้าของข้อมูลที่อยู่ในประเทศไทย %d รายเกี่ยวข้อง ต้องแจ้งเว้นแต่การละเมิดนั้นไม่มีความเสี่ยงที่จะมีผลกระทบต่อสิทธิและเสรีภาพของบุคคล",
		"pdpa.deadline": "แจ้งสำนักงานคณะกรรมการฯ",
		"pdpa.basis":    "มาตรา 37(4): โดยไม่ชักช้าภายใน 72 ชั่วโมงนับแต่ทราบเหตุ",
		"pdpa.overview": "รายละเอียดของเหตุการละเมิด", "pdpa.kinds": "ข้อมูลส่วนบุคคลที่เกี่ยวข้อง", "pdpa.persons": "จำนวนเจ้าของข้อมูลและรายการ",
		"pdpa.consequences":      "ผลกระทบที่อาจเกิดขึ้น",
		"pdpa.consequences.todo": "ความเสี่ยงต่อสิทธิและเสรีภาพของเจ้าของข้อมูล หากมีความเสี่ยงสูงต้องแจ้งเจ้าของข้อมูลด้วยโดยไม่ชักช้า",
		"pdpa.measures":          "มาตรการที่ดำเนินการแล้วหรือจะดำเนินการ",
		"contact":                "ช่องทางติดต่อ (เจ้าหน้าที่คุ้มครองข้อมูลส่วนบุคคล)",
		"contact.todo":           "ชื่อและช่องทางติดต่อของเจ้าหน้าที่คุ้มครองข้อมูลส่วนบุคคลหรือผู้ประสานงาน",
	},
}
