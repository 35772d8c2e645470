// Checks every HTTP exchange the end-to-end tests recorded against
// docs/openapi.yaml: the path matches a documented path template, the method
// is documented there, the status is documented (exactly, as a range such as
// 4XX, or as `default`), the content type is one the response declares, the
// documented response headers are present and match their schemas, and the
// body matches the response schema ($refs resolved in the same document).
//
// It never trusts what it checks: an exchange that matches nothing fails,
// and so does an empty log (nothing recorded means nothing was checked).
//
// usage: node validate.js OPENAPI_YAML LOG_DIR
//   LOG_DIR holds *.jsonl files, one exchange a line, as tests/lib/common.sh
//   writes them: {test, method, path, status, headers (raw), body (raw)}.
// Exit status: 0 all match, 1 some do not, 77 nothing was recorded.
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const root = path.resolve(__dirname, '..', '..');
const toolsRequire = createRequire(path.join(root, 'tools', 'node_modules', 'noop.js'));
const Ajv2020 = toolsRequire('ajv/dist/2020').default;
const yaml = toolsRequire('js-yaml');

const [specFile, logDir] = process.argv.slice(2);
if (!specFile || !logDir) {
  console.error('usage: node validate.js OPENAPI_YAML LOG_DIR');
  process.exit(2);
}

const spec = yaml.load(fs.readFileSync(specFile, 'utf8'));
const SPEC_ID = 'https://bulkhead.invalid/openapi.json';

const ajv = new Ajv2020({ strict: false, allErrors: true });
// The formats docs/openapi.yaml uses, checked as strictly as the server
// produces them.
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat('date-time', (s) =>
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s) && !isNaN(Date.parse(s)));
ajv.addFormat('email', /^[^\s@]+@[^\s@]+$/);
ajv.addFormat('uri', /^[a-z][a-z0-9+.-]*:\S*$/i);
ajv.addFormat('uri-reference', /^\S*$/);
ajv.addFormat('int32', { type: 'number', validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat('int64', { type: 'number', validate: (n) => Number.isInteger(n) });
ajv.addFormat('password', () => true);
// The whole document is one schema resource, so "#/components/..." $refs
// inside any response schema resolve against it.
ajv.addSchema({ ...spec, $id: SPEC_ID });

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

// Path templates, the most literal first, so /v1/me/notifications/read-all
// wins over /v1/me/notifications/{notification_id}/read-like neighbours.
const templates = Object.keys(spec.paths || {})
  .map((tpl) => {
    const segs = tpl.split('/');
    const re = new RegExp(
      '^' +
        segs
          .map((s) => (/^\{[^}]+\}$/.test(s) ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join('/') +
        '$',
    );
    return { tpl, re, literal: segs.filter((s) => !/^\{/.test(s)).length };
  })
  .sort((a, b) => b.literal - a.literal);

const ptr = (...parts) => parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

const validators = new Map();
function validatorFor(pointer) {
  let v = validators.get(pointer);
  if (!v) {
    v = ajv.compile({ $ref: `${SPEC_ID}#/${pointer}` });
    validators.set(pointer, v);
  }
  return v;
}

function deref(obj) {
  while (obj && obj.$ref) {
    const parts = obj.$ref.replace(/^#\//, '').split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    obj = parts.reduce((o, p) => (o ? o[p] : undefined), spec);
  }
  return obj;
}

// The last header block curl wrote (an interim 100 Continue comes first).
function parseHeaders(raw) {
  const blocks = raw.split(/\r?\n\r?\n/).filter((b) => /^HTTP\//.test(b));
  const last = blocks.length ? blocks[blocks.length - 1] : '';
  const h = {};
  for (const line of last.split(/\r?\n/).slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return h;
}

function findResponse(op, status) {
  const r = op.responses || {};
  const s = String(status);
  if (r[s]) return { key: s, resp: r[s] };
  const range = `${s[0]}XX`;
  if (r[range]) return { key: range, resp: r[range] };
  if (r.default) return { key: 'default', resp: r.default };
  return null;
}

function fmtErrors(errors) {
  return (errors || [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '(body)'} ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`)
    .join('; ');
}

// A request outside the document has one answer the document states for
// every path: a path it does not hold is a 404 problem, a method a path does
// not serve a 405 problem with Allow. Anything else there is a finding.
function checkOutside(x, want, what) {
  if (Number(x.status) !== want) return [`${what}: answered ${x.status}, not ${want}`];
  const headers = parseHeaders(x.headers);
  const out = [];
  const ctype = (headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (want === 405 && !headers['allow']) out.push(`${what}: 405 without Allow`);
  if (x.method.toLowerCase() === 'head') return out;
  if (ctype !== 'application/problem+json') return [...out, `${what}: ${want} is not a problem (${ctype})`];
  let doc;
  try {
    doc = JSON.parse(x.body || '');
  } catch (e) {
    return [...out, `${what}: body is not JSON`];
  }
  const v = validatorFor('components/schemas/Problem');
  if (!v(doc)) out.push(`${what}: ${fmtErrors(v.errors)}`);
  return out;
}

// check(exchange) -> list of problems (empty when it matches the document).
function check(x) {
  const out = [];
  // The server routes the canonical path: empty segments are dropped
  // (`//v1//me/` is `/v1/me`), and so does this check.
  const urlPath = ('/' + x.path.split('?')[0].split('/').filter(Boolean).join('/'));
  const m = templates.find((t) => t.re.test(urlPath));
  if (!m) return checkOutside(x, 404, `${x.method} ${urlPath} (not in docs/openapi.yaml)`);
  const method = x.method.toLowerCase();
  const item = spec.paths[m.tpl];
  if (!METHODS.includes(method) || !item[method])
    return checkOutside(x, 405, `${x.method} ${m.tpl} (method not documented)`);
  const op = item[method];
  const where = `${x.method} ${m.tpl} -> ${x.status}`;
  const found = findResponse(op, x.status);
  if (!found) return [`${where}: status not documented`];
  const resp = deref(found.resp);
  const base = ptr('paths', m.tpl, method, 'responses', found.key);
  const respPtr = found.resp.$ref ? found.resp.$ref.replace(/^#\//, '') : base;
  const headers = parseHeaders(x.headers);

  // Documented headers: required ones present, every present one valid.
  for (const [name, hdef0] of Object.entries(resp.headers || {})) {
    const hdef = deref(hdef0);
    const value = headers[name.toLowerCase()];
    if (value === undefined) {
      if (hdef.required) out.push(`${where}: required header ${name} missing`);
      continue;
    }
    if (hdef.schema) {
      const hPtr = hdef0.$ref ? hdef0.$ref.replace(/^#\//, '') : `${respPtr}/${ptr('headers', name)}`;
      const v = validatorFor(`${hPtr}/schema`);
      const t = deref(hdef.schema).type;
      const typed = t === 'integer' || t === 'number' ? Number(value) : value;
      if (!v(typed)) out.push(`${where}: header ${name}: ${value}: ${fmtErrors(v.errors)}`);
    }
  }

  const content = resp.content || {};
  const ctype = (headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  const body = x.body || '';
  if (Object.keys(content).length === 0) {
    if (body.length > 0 && method !== 'head') out.push(`${where}: body sent, none documented`);
    return out;
  }
  if (!ctype) {
    if (method === 'head' || x.status === 304) return out;
    out.push(`${where}: no Content-Type`);
    return out;
  }
  const mediaKey = Object.keys(content).find((k) => k.toLowerCase() === ctype) ||
    Object.keys(content).find((k) => k.endsWith('/*') && ctype.startsWith(k.slice(0, -1))) ||
    (content['*/*'] ? '*/*' : undefined);
  if (!mediaKey) {
    out.push(`${where}: content type ${ctype} not documented (${Object.keys(content).join(', ')})`);
    return out;
  }
  const media = content[mediaKey];
  if (!media.schema || method === 'head') return out;
  if (!/[/+]json$/.test(ctype)) return out;
  let doc;
  try {
    doc = JSON.parse(body);
  } catch (e) {
    out.push(`${where}: body is not JSON: ${body.slice(0, 80)}`);
    return out;
  }
  const v = validatorFor(`${respPtr}/${ptr('content', mediaKey, 'schema')}`);
  if (!v(doc)) out.push(`${where}: body does not match: ${fmtErrors(v.errors)}: ${body.slice(0, 200)}`);
  return out;
}

let files = [];
try {
  files = fs.readdirSync(logDir).filter((f) => f.endsWith('.jsonl')).sort();
} catch (e) {
  /* no directory: nothing recorded */
}
let total = 0;
let failed = 0;
const seen = new Map(); // one report per distinct failure
for (const f of files) {
  const lines = fs.readFileSync(path.join(logDir, f), 'utf8').split('\n').filter(Boolean);
  for (const line of lines) {
    const x = JSON.parse(line);
    total++;
    const problems = check(x);
    if (problems.length === 0) continue;
    failed++;
    for (const p of problems) {
      const key = p.replace(/: \{.*$/, '');
      if (!seen.has(key)) seen.set(key, { p, test: x.test, path: x.path, n: 0 });
      seen.get(key).n++;
    }
  }
}
if (total === 0) {
  console.log(`SKIP: no exchanges recorded in ${logDir} (run the e2e tests with it)`);
  process.exit(77);
}
for (const { p, test, path: p2, n } of seen.values()) {
  console.log(`FAIL: ${p}\n      (${n}x; first in ${test}: ${p2})`);
}
console.log(`${total} exchanges from ${files.length} test runs checked against ${path.basename(specFile)}; ${failed} do not match`);
process.exit(failed ? 1 : 0);
