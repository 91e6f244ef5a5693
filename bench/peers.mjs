// Peers beside libllmroute against the same local upstream and body
// (bench/README.md, `make bench-peers`): the Portkey AI gateway (a hop)
// and the official OpenAI Node SDK (an in-process client). Prints a
// Markdown section on stdout.
//
//   node bench/peers.mjs --bin build/bench --modules build/peers
//        [--rounds 5] [--seconds 1] [--warmup-s 0.3]
//
// Starts bench_upstream (non-streaming answers), bench_server (paced SSE
// streams) and the Portkey gateway on free loopback ports, and stops every
// one of them by its PID at the end (SIGTERM, then SIGKILL after 5 s).
// Every figure is the median of --rounds rounds (min - max); a round runs
// each configuration once, in a fresh process, in the same order.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const bin = resolve(opt('--bin', 'build/bench'));
const modules = resolve(opt('--modules', 'build/peers'));
const rounds = Number(opt('--rounds', '5'));
const seconds = opt('--seconds', '1');
const warmup = opt('--warmup-s', '0.3');
const here = new URL('.', import.meta.url).pathname;
const overhead = join(bin, 'bench_overhead');
const children = [];

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

// A server that prints "PORT n" and exits when its stdin closes.
function startPortServer(path, argv) {
  return new Promise((ok, fail) => {
    const c = spawn(path, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(c);
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/PORT (\d+)/);
      if (m) ok({ child: c, port: Number(m[1]) });
    });
    c.once('exit', (code) => fail(new Error(`${path} exited (${code})`)));
  });
}

async function waitHttp(port, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing answered on port ${port} within ${ms} ms`);
}

function stop(c) {
  return new Promise((ok) => {
    if (c.exitCode !== null || c.signalCode !== null) return ok();
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    c.once('exit', () => { clearTimeout(t); ok(); });
    c.kill('SIGTERM'); // by the PID node holds for this child
  });
}

const stallMs = Number(opt('--stall-ms', '200'));
// bench_failover's "added (paired median)" column, in ms, by scenario
function failoverRun() {
  const out = execFileSync(join(bin, 'bench_failover'),
    ['--server', join(bin, 'bench_server'), '--rounds', '30', '--warmup', '3',
     '--stall-rounds', '10', '--stall-ms', `${stallMs}`], { encoding: 'utf8', timeout: 60000 });
  const row = (prefix) => {
    const l = out.split('\n').find((x) => x.startsWith(`| ${prefix}`));
    if (!l) throw new Error(`bench_failover: no row "${prefix}"`);
    const c = l.split('|').map((x) => x.trim());
    return { ttft: Number(c[2]), added: Number(c[5]) };
  };
  return { direct: row('direct call'), refused: row('first slug refused'),
           fail503: row('first slug answers 503'), stall: row('first slug stalls') };
}

const json = (file, argv) =>
  JSON.parse(execFileSync(file, argv, { encoding: 'utf8', timeout: 60000 }).trim().split('\n').pop());

const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
// CPU time (user + system) of another process in µs, from /proc
const procCpuUs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * 1e6 / ticks; // fields 14, 15
};

const statusKb = (pid, key) => {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+)`, 'm'));
  return m ? Number(m[1]) : -1;
};

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const st = (v) => ({ med: median(v), min: Math.min(...v), max: Math.max(...v) });
const fmt = (s, d = 0, sign = false) => {
  const f = (x) => (sign && x >= 0 ? '+' : '') + x.toFixed(d);
  return `${f(s.med)} (${f(s.min)} – ${f(s.max)})`;
};

async function main() {
  const up = await startPortServer(join(bin, 'bench_upstream'), ['--threads', '2']);
  const sse = await startPortServer(join(bin, 'bench_server'), ['--events', '10', '--interval-ms', '2']);
  const upHost = `http://127.0.0.1:${up.port}`;
  const upBase = `${upHost}/v1`;
  const sseBase = `http://127.0.0.1:${sse.port}/v1`;
  // the exact body llmr_complete sends, for the raw client
  json(overhead, ['client', '--kind', 'llmr', '--base', `${upHost}/capture/v1`,
                  '--threads', '1', '--seconds', '0.05', '--warmup-s', '0']);

  const pkPort = await freePort();
  const pk = spawn(process.execPath,
    [join(modules, 'node_modules/@portkey-ai/gateway/build/start-server.js'),
     `--port=${pkPort}`, '--headless'],
    { cwd: modules, env: { ...process.env, NODE_ENV: 'production' },
      stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(pk);
  await waitHttp(pkPort, 20000);
  const pkBase = `http://127.0.0.1:${pkPort}/v1`;
  const pkHeaders = (host) => ['--header', 'x-portkey-provider: openai',
                               '--header', `x-portkey-custom-host: ${host}`];

  const T = ['--seconds', seconds, '--warmup-s', warmup];
  const configs = [];
  for (const n of [1, 16]) {
    configs.push({ key: `raw/${n}`, run: () => json(overhead, ['client', '--kind', 'raw', '--base', upBase, '--body-from', upHost, '--threads', `${n}`, ...T]) });
    configs.push({ key: `llmr/${n}`, run: () => json(overhead, ['client', '--kind', 'llmr', '--base', upBase, '--threads', `${n}`, ...T]) });
    configs.push({ key: `sdk/${n}`, run: () => json(process.execPath, [join(here, 'peer_sdk.mjs'), '--modules', modules, '--base', upBase, '--concurrency', `${n}`, ...T]) });
    configs.push({ key: `portkey/${n}`, run: () => json(overhead, ['client', '--kind', 'raw', '--base', pkBase, '--body-from', upHost, ...pkHeaders(upBase), '--threads', `${n}`, ...T]) });
  }
  configs.push({ key: 'raw/stream', run: () => json(overhead, ['client', '--kind', 'raw', '--stream', '--base', sseBase, '--body-from', upHost, '--threads', '1', ...T]) });
  configs.push({ key: 'llmr/stream', run: () => json(overhead, ['client', '--kind', 'llmr', '--stream', '--base', sseBase, '--threads', '1', ...T]) });
  configs.push({ key: 'sdk/stream', run: () => json(process.execPath, [join(here, 'peer_sdk.mjs'), '--stream', '--modules', modules, '--base', sseBase, '--concurrency', '1', ...T]) });
  configs.push({ key: 'portkey/stream', run: () => json(overhead, ['client', '--kind', 'raw', '--stream', '--base', pkBase, '--body-from', upHost, ...pkHeaders(sseBase), '--threads', '1', ...T]) });
  // failover through Portkey's fallback config: the first target fails
  // (refused port / 503 / stalls past its request_timeout), the second is
  // sseBase; "direct" is the same config with only the good target
  const deadPort = await freePort();
  const sseHost = `http://127.0.0.1:${sse.port}`;
  const tgt = (host, extra = {}) => ({ provider: 'openai', api_key: 'sk-bench', custom_host: host, ...extra });
  const fb = (targets) => ['--header', `x-portkey-config: ${JSON.stringify({ strategy: { mode: 'fallback' }, targets })}`];
  const firsts = {
    direct: null,
    refused: tgt(`http://127.0.0.1:${deadPort}/v1`),
    fail503: tgt(`${sseHost}/fail503/v1`),
    stall: tgt(`${sseHost}/stall/v1`, { request_timeout: stallMs }),
  };
  for (const [name, first] of Object.entries(firsts)) {
    const targets = first ? [first, tgt(sseBase)] : [tgt(sseBase)];
    configs.push({ key: `pkfo/${name}`, run: () => json(overhead, ['client', '--kind', 'raw', '--stream', '--base', pkBase, '--body-from', upHost, ...fb(targets), '--threads', '1', ...T]) });
  }
  // ours beside it: bench_failover's paired medians (ms), one run per round
  configs.push({ key: 'llmr/failover', run: () => failoverRun() });
  configs.push({ key: 'capacity', run: () => json(overhead, ['capacity', '--port', `${up.port}`, '--pid', `${up.child.pid}`, '--body-from', upHost, '--capacity-conns', '32', '--seconds', seconds]) });

  // one unrecorded run through the gateway first: its JIT warms up
  configs.find((c) => c.key === 'portkey/16').run();
  const res = {};
  for (let r = 0; r < rounds; r++) {
    for (const c of configs) {
      const cpu0 = c.key.startsWith('portkey/') ? procCpuUs(pk.pid) : 0;
      const x = c.run();
      // the gateway's own CPU per call (warm-up calls included in both)
      if (cpu0) x.gw_cpu_us_per_call = (procCpuUs(pk.pid) - cpu0) / x.all_calls;
      (res[c.key] ??= []).push(x);
    }
  }
  const pkRss = statusKb(pk.pid, 'VmRSS'), pkHwm = statusKb(pk.pid, 'VmHWM');
  await stop(pk);
  await stop(up.child);
  await stop(sse.child);

  const v = (key, f) => st(res[key].map(f));
  const pkgv = (p) => JSON.parse(readFileSync(join(modules, 'node_modules', p, 'package.json'), 'utf8')).version;
  const cap = v('capacity', (x) => x.rps);
  let fastest = 0;
  for (const k of Object.keys(res)) if (/^(raw|llmr|sdk|portkey)\/(1|16)$/.test(k)) fastest = Math.max(fastest, median(res[k].map((x) => x.rps)));
  const out = [];
  out.push(`Node ${process.version}, @portkey-ai/gateway ${pkgv('@portkey-ai/gateway')} ` +
           `(@hono/node-server ${pkgv('@hono/node-server')} by an npm override, started as ` +
           `\`NODE_ENV=production node node_modules/@portkey-ai/gateway/build/start-server.js --port=PORT --headless\`), ` +
           `openai ${pkgv('openai')} (maxRetries 0). ${rounds} rounds; each round runs every row once, ` +
           `in a fresh process, for ${seconds} s after a ${warmup} s warm-up. Portkey is a hop: it is driven by the ` +
           'raw libcurl client (the cheapest client here, with the same body plus the two `x-portkey-*` headers ' +
           'that route it to the same upstream), so everything it adds is the gateway. The SDK runs N async ' +
           'loops on one client in one Node process. Median of the rounds (min – max); times in µs.\n');
  out.push(`Upstream capacity, measured once per round as above (\`bench_overhead capacity\`: 32 connections, HTTP/1.1 pipelining 16 deep, generator and upstream pinned to a CPU each): ${fmt(cap)} req/s, ` +
           `${(cap.med / fastest).toFixed(1)}× the fastest row (${fastest.toFixed(0)} req/s).` +
           (cap.med / fastest >= 3 ? '' : ' **Below 3×: the fastest rows share the 2 cores with the upstream.**') + '\n');
  out.push('| client | req/s, 1 at a time | req/s, 16 concurrent | p50 latency, 1 at a time | added p50 vs raw libcurl | p99, 1 at a time | client CPU µs/call (16) |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const names = { raw: 'raw libcurl (reference)', llmr: '**libllmroute** llmr_complete', sdk: 'OpenAI Node SDK', portkey: 'Portkey gateway (+ raw libcurl)' };
  for (const k of ['raw', 'llmr', 'sdk', 'portkey']) {
    const added = st(res[`${k}/1`].map((x, i) => x.p50_us - res['raw/1'][i].p50_us));
    out.push(`| ${names[k]} | ${fmt(v(`${k}/1`, (x) => x.rps))} | ${fmt(v(`${k}/16`, (x) => x.rps))} | ` +
             `${fmt(v(`${k}/1`, (x) => x.p50_us))} | ${k === 'raw' ? '-' : fmt(added, 0, true)} | ` +
             `${fmt(v(`${k}/1`, (x) => x.p99_us))} | ${fmt(v(`${k}/16`, (x) => x.cpu_us_per_call), 1)} |`);
  }
  out.push('\n"added p50" is the row\'s p50 minus raw libcurl\'s p50 in the same round. CPU is the client ' +
           'process\'s (for Portkey: the raw client\'s only); the gateway process itself spent ' +
           `${fmt(v('portkey/16', (x) => x.gw_cpu_us_per_call))} µs of CPU per call at 16 concurrent and ` +
           `${fmt(v('portkey/1', (x) => x.gw_cpu_us_per_call))} µs at 1 (/proc/PID/stat).\n`);
  out.push('Streaming, one stream at a time from bench_server (10 text events, the first at once, then one ' +
           'every 2 ms), the request as each client sends it with `"stream": true`. TTFT: from the call to the ' +
           'first body byte (raw libcurl, Portkey) / the first TEXT event (llmr_stream) / the first chunk with ' +
           'content (SDK).\n');
  out.push('| client | TTFT p50 | added vs raw libcurl | whole stream p50 |');
  out.push('| --- | ---: | ---: | ---: |');
  for (const k of ['raw', 'llmr', 'sdk', 'portkey']) {
    const added = st(res[`${k}/stream`].map((x, i) => x.ttft_p50_us - res['raw/stream'][i].ttft_p50_us));
    out.push(`| ${names[k].replace('llmr_complete', 'llmr_stream')} | ${fmt(v(`${k}/stream`, (x) => x.ttft_p50_us))} | ` +
             `${k === 'raw' ? '-' : fmt(added, 0, true)} | ${fmt(v(`${k}/stream`, (x) => x.p50_us))} |`);
  }
  out.push('\nResident memory, MiB: the client process after its 16-concurrent run (VmHWM, its peak; our ' +
           'figure includes the benchmark\'s own latency arrays), and the Portkey server after all rounds.\n');
  out.push('| process | peak (VmHWM) | resident at the end (VmRSS) |');
  out.push('| --- | ---: | ---: |');
  const mib = (s) => ({ med: s.med / 1024, min: s.min / 1024, max: s.max / 1024 });
  out.push(`| bench_overhead, raw libcurl, 16 threads | ${fmt(mib(v('raw/16', (x) => x.hwm_kb)), 1)} | ${fmt(mib(v('raw/16', (x) => x.rss_kb)), 1)} |`);
  out.push(`| bench_overhead, **llmr_complete**, 16 threads | ${fmt(mib(v('llmr/16', (x) => x.hwm_kb)), 1)} | ${fmt(mib(v('llmr/16', (x) => x.rss_kb)), 1)} |`);
  out.push(`| node, OpenAI SDK, 16 concurrent | ${fmt(mib(v('sdk/16', (x) => x.hwm_kb)), 1)} | ${fmt(mib(v('sdk/16', (x) => x.rss_kb)), 1)} |`);
  out.push(`| node, Portkey gateway server (one process, all rounds) | ${(pkHwm / 1024).toFixed(1)} | ${(pkRss / 1024).toFixed(1)} |`);
  out.push(`\nFailover, one stream at a time: the first target/slug fails, the second (bench_server, as above) ` +
           'answers; time to first byte (Portkey, raw libcurl) / first TEXT event (llmr_stream), in ms, as added over ' +
           'a direct call to the second. Portkey: `x-portkey-config: {"strategy":{"mode":"fallback"},"targets":[FIRST, ' +
           `GOOD]}\` against the same config with GOOD alone, each run ${seconds} s after a ${warmup} s warm-up, ` +
           'p50 of the run minus the direct run\'s p50 in the same round. libllmroute: `bench_failover --rounds 30 ' +
           `--warmup 3 --stall-rounds 10 --stall-ms ${stallMs}\` once per round, its paired median. The stall: the ` +
           `first upstream reads the request and never answers; Portkey's target \`request_timeout\` and our ` +
           `\`policy.attempt_timeout_ms\` are both ${stallMs} ms.\n`);
  out.push('| first slug / target | Portkey fallback: added ms | libllmroute: added ms |');
  out.push('| --- | ---: | ---: |');
  const pkDirect = v('pkfo/direct', (x) => x.ttft_p50_us / 1000);
  const llDirect = v('llmr/failover', (x) => x.direct.ttft);
  out.push(`| direct call to the second (TTFT, not added) | ${fmt(pkDirect, 3)} | ${fmt(llDirect, 3)} |`);
  const foNames = { refused: 'refused (no listener)', fail503: 'answers 503', stall: `stalls (${stallMs} ms timeout)` };
  for (const k of ['refused', 'fail503', 'stall']) {
    const pkAdded = st(res[`pkfo/${k}`].map((x, i) => (x.ttft_p50_us - res['pkfo/direct'][i].ttft_p50_us) / 1000));
    out.push(`| ${foNames[k]} | ${fmt(pkAdded, 3, true)} | ${fmt(v('llmr/failover', (x) => x[k].added), 3, true)} |`);
  }
  console.log(out.join('\n'));
}

const cleanup = async () => { for (const c of children) await stop(c); };
process.on('SIGINT', async () => { await cleanup(); process.exit(130); });
main().catch(async (e) => {
  console.log(`**bench-peers failed:** ${e.message}`);
  await cleanup();
  process.exit(1);
});
