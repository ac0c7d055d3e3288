'use strict';
// The `context` a handler receives, with the fields of Lambda's Node runtime: the function's
// settings from the environment, the invocation's from the event's headers.

// `headers`: the event's, names lower-cased. `base`: the part that belongs to how the
// invocation ends (callbackWaitsForEmptyEventLoop, and succeed/fail/done for buffered
// handlers); the rest is added to it.
function invokeContext(headers, env, base) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return Object.assign(base, {
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    // A string, as on Lambda.
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJson(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseJson(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    // Lambda-Runtime-Deadline-Ms is Unix epoch milliseconds; past it this goes negative.
    getRemainingTimeInMillis() {
      return deadline - Date.now();
    },
  });
}

// A header holding JSON; a malformed one fails the invocation, as on Lambda.
function parseJson(text, name) {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

module.exports = { invokeContext };
