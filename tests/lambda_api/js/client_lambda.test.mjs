// funcd's Lambda API driven by the AWS SDK for JavaScript v3 (@aws-sdk/client-lambda).
//
// Needs a running daemon: tests/lambda_api/harness.py starts one and runs this file with
// FUNCD_ENDPOINT and AWS_SHARED_CREDENTIALS_FILE / AWS_PROFILE / AWS_DEFAULT_REGION set:
//
//   cd tests/lambda_api && FUNCD_BINARY=... /usr/bin/python3 harness.py --run node --test js/client_lambda.test.mjs
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  InvokeCommand,
  LambdaClient,
  ListFunctionsCommand,
  ListTagsCommand,
  ResourceNotFoundException,
  TagResourceCommand,
  UntagResourceCommand,
  paginateListFunctions,
  waitUntilFunctionActiveV2,
} from '@aws-sdk/client-lambda';

const ROLE = 'arn:aws:iam::123456789012:role/lambda-role';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run this file through tests/lambda_api/harness.py --run`);
  return value;
}

// The [profile] section of an AWS shared-credentials file.
function readCredentials(file, profile) {
  let section = null;
  const values = {};
  for (const raw of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = line.match(/^\[(.+)\]$/);
    if (header) {
      section = header[1].trim();
      continue;
    }
    const eq = line.indexOf('=');
    if (section === profile && eq > 0) values[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  if (!values.aws_access_key_id || !values.aws_secret_access_key) {
    throw new Error(`${file} has no [${profile}] profile with aws_access_key_id and aws_secret_access_key`);
  }
  return { accessKeyId: values.aws_access_key_id, secretAccessKey: values.aws_secret_access_key };
}

// --- a zip writer (stored entries), enough for one-file functions -----------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function makeZip(files) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  const dosTime = 0; // 00:00:00
  const dosDate = (40 << 9) | (1 << 5) | 1; // 2020-01-01
  for (const [name, text] of Object.entries(files)) {
    const nameBytes = Buffer.from(name, 'utf8');
    const data = Buffer.from(text, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(dosTime, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, nameBytes, data);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(dosTime, 12);
    central.writeUInt16LE(dosDate, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt16LE(0, 30); // extra
    central.writeUInt16LE(0, 32); // comment
    central.writeUInt16LE(0, 34); // disk
    central.writeUInt16LE(0, 36); // internal attributes
    central.writeUInt32LE(((0o100644 << 16) >>> 0), 38); // regular file, rw-r--r--
    central.writeUInt32LE(offset, 42);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + data.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}

// --- the function under test -----------------------------------------------------------

const HANDLER = `
import json

def handler(event, context):
    print("JS-HANDLER-SAYS " + json.dumps(event))
    cc = context.client_context
    return {"event": event, "version": context.function_version,
            "custom": cc.custom if cc else None}
`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function uniqueName(prefix) {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

describe('@aws-sdk/client-lambda against funcd', () => {
  const endpoint = required('FUNCD_ENDPOINT');
  const region = process.env.AWS_DEFAULT_REGION || 'us-east-1';
  const credentials = readCredentials(required('AWS_SHARED_CREDENTIALS_FILE'), process.env.AWS_PROFILE || 'funcd');
  const client = new LambdaClient({ endpoint, region, credentials, maxAttempts: 1 });
  const name = uniqueName('js');
  const zip = makeZip({ 'app.py': HANDLER });
  let functionArn;

  before(async () => {
    const created = await client.send(new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'python3.11',
      Role: ROLE,
      Handler: 'app.handler',
      Code: { ZipFile: zip },
      Timeout: 5,
      Tags: { origin: 'sdk-v3' },
    }));
    functionArn = created.FunctionArn;
  });

  after(() => client.destroy());

  test('CreateFunction answered with the function', async () => {
    assert.match(functionArn, new RegExp(`^arn:aws:lambda:${region}:\\d{12}:function:${name}$`));
    const got = await client.send(new GetFunctionCommand({ FunctionName: name }));
    assert.equal(got.Configuration.CodeSha256, createHash('sha256').update(zip).digest('base64'));
    assert.equal(got.Configuration.CodeSize, zip.length);
    assert.equal(got.Configuration.State, 'Active');
    assert.equal(got.Configuration.LastUpdateStatus, 'Successful');
    assert.deepEqual(got.Tags, { origin: 'sdk-v3' });
  });

  test('waitUntilFunctionActiveV2 returns on its first poll', async () => {
    const started = Date.now();
    const result = await waitUntilFunctionActiveV2({ client, maxWaitTime: 10, minDelay: 1, maxDelay: 1 },
      { FunctionName: name });
    assert.equal(result.state, 'SUCCESS');
    assert.ok(Date.now() - started < 900, `the waiter took ${Date.now() - started} ms`);
  });

  test('Invoke returns the payload as bytes', async () => {
    const answer = await client.send(new InvokeCommand({
      FunctionName: name,
      Payload: encoder.encode(JSON.stringify({ from: 'js' })),
    }));
    assert.equal(answer.StatusCode, 200);
    assert.equal(answer.ExecutedVersion, '$LATEST');
    assert.equal(answer.FunctionError, undefined);
    assert.ok(answer.Payload instanceof Uint8Array);
    const payload = JSON.parse(decoder.decode(answer.Payload));
    assert.deepEqual(payload.event, { from: 'js' });
    assert.equal(payload.version, '$LATEST');
  });

  test('Invoke with a qualified name and a Tail log', async () => {
    const context = { custom: { k: 'v' } };
    const answer = await client.send(new InvokeCommand({
      FunctionName: `${name}:$LATEST`,
      LogType: 'Tail',
      ClientContext: Buffer.from(JSON.stringify(context)).toString('base64'),
      Payload: encoder.encode('{"tail": true}'),
    }));
    assert.equal(answer.StatusCode, 200);
    const log = Buffer.from(answer.LogResult, 'base64').toString('utf8');
    assert.match(log, /START RequestId: /);
    assert.match(log, /JS-HANDLER-SAYS \{"tail": true\}/);
    assert.match(log, /REPORT RequestId: /);
    assert.deepEqual(JSON.parse(decoder.decode(answer.Payload)).custom, { k: 'v' });
  });

  test('Event invocation is accepted', async () => {
    const answer = await client.send(new InvokeCommand({
      FunctionName: name, InvocationType: 'Event', Payload: encoder.encode('{}'),
    }));
    assert.equal(answer.StatusCode, 202);
  });

  test('TagResource, ListTags and UntagResource on the encoded ARN', async () => {
    await client.send(new TagResourceCommand({
      Resource: functionArn, Tags: { a: '1', 'b c': '2', 'd/e': '3' },
    }));
    let tags = (await client.send(new ListTagsCommand({ Resource: functionArn }))).Tags;
    assert.deepEqual(tags, { origin: 'sdk-v3', a: '1', 'b c': '2', 'd/e': '3' });
    await client.send(new UntagResourceCommand({ Resource: functionArn, TagKeys: ['a', 'b c', 'd/e'] }));
    tags = (await client.send(new ListTagsCommand({ Resource: functionArn }))).Tags;
    assert.deepEqual(tags, { origin: 'sdk-v3' });
  });

  test('ListFunctions lists it, page by page too', async () => {
    const listed = await client.send(new ListFunctionsCommand({}));
    assert.ok(listed.Functions.some((f) => f.FunctionName === name));
    const seen = [];
    for await (const page of paginateListFunctions({ client, pageSize: 1 }, {})) {
      assert.ok(page.Functions.length <= 1);
      seen.push(...page.Functions.map((f) => f.FunctionName));
    }
    assert.equal(seen.filter((n) => n === name).length, 1);
  });

  test('a missing function is a ResourceNotFoundException', async () => {
    await assert.rejects(
      client.send(new GetFunctionCommand({ FunctionName: uniqueName('missing') })),
      (err) => {
        assert.ok(err instanceof ResourceNotFoundException, `${err.name}: ${err.message}`);
        assert.equal(err.$metadata.httpStatusCode, 404);
        assert.match(err.message, /^Function not found: arn:aws:lambda:/);
        return true;
      });
  });

  test('DeleteFunction removes it', async () => {
    const other = uniqueName('js-delete');
    await client.send(new CreateFunctionCommand({
      FunctionName: other, Runtime: 'python3.11', Role: ROLE, Handler: 'app.handler', Code: { ZipFile: zip },
    }));
    const deleted = await client.send(new DeleteFunctionCommand({ FunctionName: other }));
    assert.ok([200, 204].includes(deleted.$metadata.httpStatusCode));
    await assert.rejects(client.send(new GetFunctionCommand({ FunctionName: other })),
      (err) => err instanceof ResourceNotFoundException);
  });
});
