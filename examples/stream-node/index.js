// A streaming CommonJS handler: `index.handler`. awslambda.streamifyResponse makes it
// `(event, responseStream, context)`; each write reaches the function URL's client as it
// is made, so the lines appear one by one instead of all at the end.
const { once } = require('node:events');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ?lines=N (default 250) and ?interval_ms=M (default 8): two to three seconds in all.
function numberParameter(query, name, fallback, min, max) {
  const value = Number(query[name] ?? fallback);
  return Number.isInteger(value) ? Math.min(Math.max(value, min), max) : fallback;
}

exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const query = event.queryStringParameters ?? {};
  const lines = numberParameter(query, 'lines', 250, 1, 100000);
  const intervalMs = numberParameter(query, 'interval_ms', 8, 0, 1000);

  // The HTTP status and headers go first, as the prelude of the stream.
  responseStream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
  });

  const started = Date.now();
  for (let i = 1; i <= lines; i++) {
    // write() returns false while the client is behind: wait for it rather than buffer.
    if (!responseStream.write(`line ${i} of ${lines} at +${Date.now() - started} ms\n`)) {
      await once(responseStream, 'drain');
    }
    await sleep(intervalMs);
  }
  console.log(`streamed ${lines} lines`);
  responseStream.end(`done in ${Date.now() - started} ms, request ${context.awsRequestId}\n`);
});
