'use strict';
// The `awslambda` global that Lambda's Node runtime gives handler modules, CommonJS and ES
// modules alike, from the moment they are loaded:
//   awslambda.streamifyResponse(handler[, { highWaterMark }]) marks a handler as streaming:
//     it is then called as handler(event, responseStream, context);
//   awslambda.HttpResponseStream.from(responseStream, { statusCode, headers, cookies }).
// AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA=1 (or true) leaves it out, as on Lambda.
// The marks Lambda's runtime uses, so that handlers wrapped by libraries that set them
// directly are recognised too.
const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';

function installAwslambdaGlobal(env) {
  const off = env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') return;
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') handler[HIGH_WATER_MARK] = parseInt(options.highWaterMark);
      return handler;
    },
    // Loaded when first used: most functions never stream.
    get HttpResponseStream() {
      return require('./http_response_stream.js').HttpResponseStream;
    },
  };
}

// How `handler` answers: { streaming, highWaterMark }. Throws for a mark it does not know.
function streamingOf(handler) {
  const mark = handler[STREAMING];
  if (mark === undefined || mark === null || mark === false) return { streaming: false };
  if (mark !== STREAM_RESPONSE) {
    const { MalformedStreamingHandler } = require('./runtime_errors.js');
    throw new MalformedStreamingHandler('Only response streaming is supported.');
  }
  const highWaterMark = parseInt(handler[HIGH_WATER_MARK]);
  return { streaming: true, highWaterMark: Number.isNaN(highWaterMark) ? undefined : highWaterMark };
}

module.exports = { installAwslambdaGlobal, streamingOf };
