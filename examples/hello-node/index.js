// A CommonJS handler: `index.handler`. An async function's result is the response.
exports.handler = async (event, context) => {
  const name = event.name ?? 'world';
  // console output goes to the function's log, tagged with the request id and level.
  console.log(`greeting ${name}`);
  return {
    message: `hello, ${name}`,
    request_id: context.awsRequestId,
    remaining_ms: context.getRemainingTimeInMillis(),
  };
};
