#!/usr/bin/env node
// onnx_check.js: run an exported lsfuse ONNX model in onnxruntime and
// compare its outputs with expected values.
//
//   node scripts/onnx_check.js MODEL.onnx IO.json
//   node scripts/onnx_check.js --cases CASES.json
//   node scripts/onnx_check.js --probe
//
// IO.json is {"inputs": {NAME: {"type": "float32"|"int64", "dims": [...],
// "data": [...]}}, "expected": {OUTPUT: {"dims": [...], "data": [...]}}}.
// CASES.json is a list of {"name", "model", "inputs", "expected"}. For each
// model the script prints one JSON line: {"name", "max_abs_diff",
// "outputs": {OUTPUT: dims}} or {"name", "error"}. --probe prints the
// onnxruntime version.
//
// onnxruntime-node is looked up in $LSFUSE_ORT_NODE_MODULES, then in
// .cache/onnx/node_modules of the repository, then by Node's usual
// resolution. Install it with
//   mkdir -p .cache/onnx && cd .cache/onnx && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund onnxruntime-node@1.30.0
// Exit status: 0 all cases ran, 1 a case failed, 2 bad usage, 3
// onnxruntime-node is not installed.
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const tries = [];
  if (process.env.LSFUSE_ORT_NODE_MODULES) {
    tries.push(path.join(process.env.LSFUSE_ORT_NODE_MODULES, 'onnxruntime-node'));
  }
  tries.push(path.join(__dirname, '..', '.cache', 'onnx', 'node_modules', 'onnxruntime-node'));
  tries.push('onnxruntime-node');
  const errs = [];
  for (const t of tries) {
    try {
      return require(t);
    } catch (e) {
      errs.push(t + ': ' + e.message.split('\n')[0]);
    }
  }
  console.error('onnx_check: onnxruntime-node is not installed (tried ' + errs.join('; ') + ').\n' +
    'Install it with: mkdir -p .cache/onnx && cd .cache/onnx && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund onnxruntime-node@1.30.0');
  process.exit(3);
}

function toTensor(ort, spec) {
  const n = spec.dims.reduce((a, b) => a * b, 1);
  if (spec.data.length !== n) {
    throw new Error('input has ' + spec.data.length + ' values for dims ' + JSON.stringify(spec.dims));
  }
  if (spec.type === 'int64') {
    return new ort.Tensor('int64', BigInt64Array.from(spec.data.map((v) => BigInt(v))), spec.dims);
  }
  if (spec.type === 'float32' || spec.type === undefined) {
    return new ort.Tensor('float32', Float32Array.from(spec.data), spec.dims);
  }
  throw new Error('unsupported input type ' + spec.type);
}

async function runCase(ort, c) {
  const session = await ort.InferenceSession.create(c.model);
  const feeds = {};
  for (const [name, spec] of Object.entries(c.inputs)) {
    feeds[name] = toTensor(ort, spec);
  }
  const results = await session.run(feeds);
  let maxDiff = 0;
  const outputs = {};
  for (const [name, want] of Object.entries(c.expected)) {
    const got = results[name];
    if (!got) {
      throw new Error('model has no output ' + JSON.stringify(name) + ' (outputs: ' + session.outputNames.join(', ') + ')');
    }
    outputs[name] = got.dims;
    if (JSON.stringify(Array.from(got.dims)) !== JSON.stringify(want.dims)) {
      throw new Error('output ' + name + ' has dims ' + JSON.stringify(got.dims) + ', want ' + JSON.stringify(want.dims));
    }
    for (let i = 0; i < want.data.length; i++) {
      const d = Math.abs(Number(got.data[i]) - want.data[i]);
      if (!(d <= maxDiff)) {
        maxDiff = Number.isNaN(d) ? Infinity : d;
      }
    }
  }
  return { name: c.name, max_abs_diff: maxDiff, outputs };
}

async function main(argv) {
  let cases;
  if (argv[0] === '--probe' && argv.length === 1) {
    const ort = loadOrt();
    console.log(JSON.stringify({ onnxruntime: ort.env.versions }));
    return 0;
  } else if (argv[0] === '--cases' && argv.length === 2) {
    cases = JSON.parse(fs.readFileSync(argv[1], 'utf8'));
  } else if (argv.length === 2 && !argv[0].startsWith('--')) {
    const io = JSON.parse(fs.readFileSync(argv[1], 'utf8'));
    cases = [{ name: argv[0], model: argv[0], inputs: io.inputs, expected: io.expected }];
  } else {
    console.error('usage: onnx_check.js MODEL.onnx IO.json | --cases CASES.json | --probe');
    return 2;
  }
  const ort = loadOrt();
  let status = 0;
  for (const c of cases) {
    try {
      console.log(JSON.stringify(await runCase(ort, c)));
    } catch (e) {
      console.log(JSON.stringify({ name: c.name, error: String(e && e.message ? e.message : e) }));
      status = 1;
    }
  }
  return status;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
  console.error('onnx_check: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
