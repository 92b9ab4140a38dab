// Compiled with tsc --strict by e2e/openapi_test.go against the types that
// openapi-typescript generates from httpapi/openapi.json (gen/sekisho.d.ts):
// a record's fields hold values (not Record<string, never>), and the token
// endpoint's error and the read operation have usable types.
import type { components, paths } from "./gen/sekisho.js";

type Rec = components["schemas"]["Record"];
const rec: Rec = { id: "x", fields: { phone: "+819012345678", age: 42, vip: true } };
const phone: unknown = rec.fields?.["phone"];

type TokenError = components["schemas"]["TokenError"];
const refused: TokenError = { error: "use_dpop_nonce", error_description: "sign again with the nonce" };

type GetRecord = paths["/v1/collections/{collection}/records/{id}"]["get"];
const read: GetRecord["responses"][200]["content"]["application/json"] = rec;
const input: components["schemas"]["RecordInput"] = { region: "jp", fields: { email: "a@example.jp" } };

export { phone, refused, read, input };
