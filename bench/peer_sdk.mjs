// The official OpenAI Node SDK as a peer (bench/README.md, bench-peers):
// one measured run against an OpenAI-compatible base URL, printed as one
// JSON line like `bench_overhead client`.
//
//   node bench/peer_sdk.mjs --modules DIR --base URL [--concurrency N]
//        [--seconds S] [--warmup-s S] [--stream]
//
// DIR is the scratch npm project that holds node_modules/openai. N async
// loops share one client (maxRetries 0); each awaits one call, then starts
// the next. Latency: from before create() to the parsed answer (the last
// chunk for a stream); TTFT: to the first chunk with content.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const modules = opt('--modules');
const base = opt('--base');
const concurrency = Number(opt('--concurrency', '1'));
const seconds = Number(opt('--seconds', '1'));
const warmup = Number(opt('--warmup-s', '0.3'));
const stream = args.includes('--stream');
if (!modules || !base) {
  console.error('usage: peer_sdk.mjs --modules DIR --base URL [--concurrency N] ' +
                '[--seconds S] [--warmup-s S] [--stream]');
  process.exit(2);
}

const require = createRequire(join(resolve(modules), 'package.json'));
const OpenAI = require('openai').default ?? require('openai');
const client = new OpenAI({ baseURL: base, apiKey: 'sk-bench-0000', maxRetries: 0 });
const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello.' }] };

async function once(ttfts) {
  if (!stream) {
    const r = await client.chat.completions.create(body);
    if (!r.choices?.[0]?.message?.content) throw new Error('empty answer');
    return;
  }
  const t0 = performance.now();
  let first = 0;
  const s = await client.chat.completions.create({
    ...body, stream: true, stream_options: { include_usage: true } });
  for await (const chunk of s) {
    if (!first && chunk.choices?.[0]?.delta?.content) first = performance.now();
  }
  if (!first) throw new Error('no content in the stream');
  ttfts.push((first - t0) * 1000);
}

async function run(secs, record) {
  const lat = [], ttft = [];
  let calls = 0;
  const start = performance.now(), end = start + secs * 1000;
  let last = start;
  const loop = async () => {
    for (;;) {
      const t0 = performance.now();
      await once(ttft);
      const t1 = performance.now();
      calls++;
      lat.push((t1 - t0) * 1000);
      if (t1 > last) last = t1;
      if (t1 >= end) return;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  if (!record) return null;
  const q = (v, p) => {
    v.sort((a, b) => a - b);
    if (!v.length) return 0;
    return v[Math.min(v.length, Math.max(1, Math.ceil(p * v.length))) - 1];
  };
  return { calls, rps: calls / ((last - start) / 1000), p50: q(lat, 0.5),
           p99: q(lat, 0.99), ttft50: q(ttft, 0.5) };
}

const statusKb = (key) => {
  const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${key}:\\s+(\\d+)`, 'm'));
  return m ? Number(m[1]) : -1;
};

if (warmup > 0) await run(warmup, false);
const cpu0 = process.cpuUsage();
const r = await run(seconds, true);
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({
  kind: 'openai-node', threads: concurrency, calls: r.calls,
  rps: +r.rps.toFixed(1), p50_us: +r.p50.toFixed(1), p99_us: +r.p99.toFixed(1),
  ttft_p50_us: +r.ttft50.toFixed(1),
  cpu_us_per_call: +((cpu.user + cpu.system) / r.calls).toFixed(1),
  rss_kb: statusKb('VmRSS'), hwm_kb: statusKb('VmHWM'),
}));
