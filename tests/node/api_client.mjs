// An EMR that is not written in Python, using emrcomm's FHIR API with a stock FHIR client
// (fhir-kit-client) and a stock JOSE library (jose) for its SMART Backend Services assertion.
//
// Environment: EMRCOMM_FHIR_BASE (http://127.0.0.1:PORT/fhir), EMRCOMM_CLIENT_ID,
// EMRCOMM_CLIENT_KEY (a PKCS#8 PEM file), EMRCOMM_CLIENT_KID, EMRCOMM_CLIENT_ALG (ES384 or RS384),
// EMRCOMM_CLOCK (the test's pinned clock, INSTANT@UNIXTIME, as emrcomm reads it).
// Prints one JSON object: what each step answered. Exits 1 on the first unexpected answer.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Client } from 'fhir-kit-client';
import { importPKCS8, SignJWT } from 'jose';

const EXT = 'http://emrcomm.org/fhir/StructureDefinition/';
const CATEGORY = 'http://emrcomm.org/fhir/CodeSystem/category';
const MODE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationMode';
const HEALTH_CARD = 'https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn';
const env = process.env;
const base = env.EMRCOMM_FHIR_BASE;
const report = { steps: {} };

function fail(why) {
  report.failed = why;
  console.log(JSON.stringify(report));
  process.exit(1);
}

function expect(condition, why) {
  if (!condition) fail(why);
}

// The same clock emrcomm serve reads: EMRCOMM_CLOCK moves from its instant at real speed.
function now() {
  const [instant, anchor] = (env.EMRCOMM_CLOCK || '').split('@');
  if (!instant) return Math.floor(Date.now() / 1000);
  const since = anchor ? Date.now() / 1000 - Number(anchor) : 0;
  return Math.floor(Date.parse(instant) / 1000 + since);
}

function statusOf(result) {
  return Client.httpFor(result).response?.status;
}

// 1. Discover the token endpoint and get a token with a signed assertion.
const client = new Client({ baseUrl: base });
const metadata = await client.capabilityStatement();
expect(metadata.resourceType === 'CapabilityStatement', 'metadata is a CapabilityStatement');
const smart = await client.smartAuthMetadata();
const tokenUrl = String(smart.tokenUrl);
expect(tokenUrl === `${base}/auth/token`, `token endpoint from the CapabilityStatement: ${tokenUrl}`);
const key = await importPKCS8(readFileSync(env.EMRCOMM_CLIENT_KEY, 'utf8'), env.EMRCOMM_CLIENT_ALG);

async function token(scope) {
  const issuedAt = now();
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: env.EMRCOMM_CLIENT_ALG, kid: env.EMRCOMM_CLIENT_KID, typ: 'JWT' })
    .setIssuer(env.EMRCOMM_CLIENT_ID).setSubject(env.EMRCOMM_CLIENT_ID).setAudience(tokenUrl)
    .setJti(randomUUID()).setIssuedAt(issuedAt).setExpirationTime(issuedAt + 240)
    .sign(key);
  const answer = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion, scope,
    }),
  });
  const body = await answer.json();
  return { status: answer.status, body, assertion };
}

const scopes = 'system/CommunicationRequest.write system/CommunicationRequest.read system/Communication.read '
  + 'system/Consent.write system/Subscription.write system/Subscription.read';
const got = await token(scopes);
expect(got.status === 200 && got.body.access_token, `token: ${got.status} ${JSON.stringify(got.body)}`);
report.steps.token = { status: got.status, scope: got.body.scope, expires_in: got.body.expires_in };
client.bearerToken = got.body.access_token;

// A replayed assertion is refused.
const replay = await fetch(tokenUrl, {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'client_credentials', scope: scopes,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: got.assertion }),
});
report.steps.replay = { status: replay.status, error: (await replay.json()).error };

// 2. A listener for notifications, and Subscriptions to consents and to the patient's messages.
const heard = [];
const hook = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    heard.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
    res.writeHead(200).end();
  });
});
await new Promise((ok) => hook.listen(0, '127.0.0.1', ok));
const hookUrl = `http://127.0.0.1:${hook.address().port}/emr/hooks`;

async function subscribe(criteria) {
  const sub = await client.create({
    resourceType: 'Subscription',
    body: { resourceType: 'Subscription', status: 'requested', reason: 'tell the EMR', criteria,
      channel: { type: 'rest-hook', endpoint: hookUrl, payload: 'application/fhir+json',
        header: ['Authorization: Bearer emr-side-secret'] } },
  });
  expect(statusOf(sub) === 201 && sub.status === 'active', `subscription: ${JSON.stringify(sub)}`);
  return { id: sub.id, secret: sub.extension.find((e) => e.url === `${EXT}subscription-secret`).valueString };
}
const consentSub = await subscribe('Consent?patient=Patient/on-en');
const messageSub = await subscribe('Communication?patient=Patient/on-en');
report.steps.subscriptions = [consentSub.id, messageSub.id];

// 3. Reminders: an SMS the template writes.
function reminder(id, patient, appointment) {
  return {
    resourceType: 'CommunicationRequest', status: 'active',
    identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.9999.1', value: id }],
    category: [{ coding: [{ system: CATEGORY, code: 'appointment-reminder' }] }],
    subject: { reference: patient },
    medium: [{ coding: [{ system: MODE, code: 'SMSWRIT' }] }],
    extension: [
      { url: `${EXT}template`, valueString: 'appointment-reminder' },
      { url: `${EXT}variable`, extension: [{ url: 'name', valueString: 'appointment' },
        { url: 'value', valueDateTime: appointment }] },
    ],
  };
}
report.steps.reminders = [];
for (const [id, patient] of [['appt-1001', 'Patient/on-en'], ['appt-1002', 'Patient/qc-fr']]) {
  const answer = await client.create({ resourceType: 'CommunicationRequest',
    body: reminder(id, patient, '2026-11-25T14:30:00-05:00') });
  const comms = answer.entry.filter((e) => e.resource.resourceType === 'Communication').map((e) => e.resource);
  report.steps.reminders.push({ status: statusOf(answer), request: answer.entry[0].resource.id,
    communications: comms.map((c) => ({ id: c.id, status: c.status, medium: c.medium?.[0]?.coding?.[0]?.code })) });
}
// The same identifier again: answered 200, nothing sent twice.
const again = await client.create({ resourceType: 'CommunicationRequest',
  body: reminder('appt-1001', 'Patient/on-en', '2026-11-25T14:30:00-05:00') });
report.steps.repeat = { status: statusOf(again) };
// A patient named by their health card number, as EMRs send it: filed as the patient found.
const byCard = reminder('appt-1004', 'Patient/on-en', '2026-11-27T10:00:00-05:00');
byCard.subject = { type: 'Patient', identifier: { system: HEALTH_CARD, value: '1234567890' } };
const carded = await client.create({ resourceType: 'CommunicationRequest', body: byCard });
report.steps.by_identifier = { status: statusOf(carded),
  subjects: carded.entry.map((e) => e.resource.subject?.reference).filter(Boolean),
  shows_number: JSON.stringify(carded).includes('1234567890') };

// 4. A clinician's note with clinical content, restricted: to the portal, with a notice.
const note = await client.create({
  resourceType: 'CommunicationRequest',
  body: { resourceType: 'CommunicationRequest', status: 'active', id: 'note-2001',
    meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] },
    category: [{ coding: [{ system: CATEGORY, code: 'clinical' }] }],
    subject: { reference: 'Patient/on-en' }, requester: { reference: 'Practitioner/dr-osei' },
    payload: [{ contentString: 'Your thyroid results are normal. Keep taking levothyroxine 50 mcg each morning.' }] },
});
report.steps.note = { status: statusOf(note), media: note.entry.filter((e) => e.resource.resourceType === 'Communication')
  .map((e) => e.resource.medium?.[0]?.coding?.[0]?.code) };

// 5. A check: nothing sent; every channel judged.
const check = await client.operation({ name: 'check', resourceType: 'CommunicationRequest',
  input: reminder('check-1', 'Patient/stopped', '2026-11-25T14:30:00-05:00') });
report.steps.check = { resourceType: check.resourceType,
  verdict: check.issue[0].details.coding[0].code,
  codes: check.issue.filter((i) => i.details?.coding?.[0]?.system === 'http://emrcomm.org/fhir/CodeSystem/rule')
    .map((i) => i.details.coding[0].code) };

// 6. Search the patient's Communications, two a page, following next links.
let page = await client.search({ resourceType: 'Communication', searchParams: { patient: 'Patient/on-en', _count: '2' } });
const found = [];
let pages = 0;
while (page) {
  pages += 1;
  for (const e of page.entry ?? []) found.push(e.resource.id);
  page = (page.link ?? []).some((l) => l.relation === 'next') ? await client.nextPage({ bundle: page }) : null;
}
report.steps.search = { pages, ids: found };

// 7. The front desk records an opt-out given in person.
const optout = await client.create({
  resourceType: 'Consent',
  body: { resourceType: 'Consent', status: 'inactive',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://emrcomm.org/fhir/CodeSystem/purpose', code: 'clinical' }] }],
    patient: { reference: 'Patient/on-en' },
    provision: { type: 'deny', code: [{ coding: [{ system: MODE, code: 'SMSWRIT' }] }] },
    extension: [{ url: `${EXT}consent-source`, valueString: 'front desk, in person' }] },
});
report.steps.optout = { status: statusOf(optout), id: optout.id };

// An SMS to that patient now: refused on SMS (422 if nothing else could carry it).
try {
  const after = await client.create({ resourceType: 'CommunicationRequest',
    body: reminder('appt-1003', 'Patient/on-en', '2026-11-26T09:00:00-05:00') });
  report.steps.after_optout = { status: statusOf(after), media: after.entry
    .filter((e) => e.resource.resourceType === 'Communication').map((e) => e.resource.medium?.[0]?.coding?.[0]?.code) };
} catch (error) {
  const outcome = typeof error.response?.data === 'string' ? JSON.parse(error.response.data) : error.response?.data;
  report.steps.after_optout = { status: error.response?.status,
    codes: (outcome?.issue ?? []).map((i) => i.details?.coding?.[0]?.code).filter(Boolean) };
}

// 8. Wait for the opt-out's notification, and check its signature.
const deadline = Date.now() + 60000;
let consentNote;
while (!consentNote && Date.now() < deadline) {
  consentNote = heard.find((h) => h.headers['x-emrcomm-subscription'] === consentSub.id);
  if (!consentNote) await new Promise((ok) => setTimeout(ok, 100));
}
expect(consentNote, 'no notification of the opt-out within 60 s');
function verified(h, secret) {
  const expected = 'v1=' + createHmac('sha256', secret)
    .update(`${h.headers['x-emrcomm-timestamp']}.${h.headers['x-emrcomm-event-id']}.`).update(h.body).digest('hex');
  const given = String(h.headers['x-emrcomm-signature'] ?? '');
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}
const consentBody = JSON.parse(consentNote.body.toString('utf8'));
report.steps.notification = {
  method: consentNote.method, url: consentNote.url, event: consentNote.headers['x-emrcomm-event'],
  verified: verified(consentNote, consentSub.secret), forged_rejected: !verified(consentNote, 'not-the-secret'),
  authorization: consentNote.headers.authorization, resource: consentBody.resourceType, status: consentBody.status,
  source: consentBody.extension.find((e) => e.url === `${EXT}consent-source`).valueString,
};
const messageNotes = heard.filter((h) => h.headers['x-emrcomm-subscription'] === messageSub.id);
report.steps.message_notifications = messageNotes.map((h) => ({ event: h.headers['x-emrcomm-event'],
  verified: verified(h, messageSub.secret) }));
hook.close();
console.log(JSON.stringify(report));
