'use strict';
// awslambda.HttpResponseStream: a streamed response that carries its HTTP status and
// headers, for function URLs. Its content type is
// application/vnd.awslambda.http-integration-response, and the body starts with a prelude:
// the metadata as JSON, then 8 NUL bytes, then the response body proper.

const CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
// JSON text never holds a NUL byte (JSON.stringify escapes it), so the delimiter is unambiguous.
const DELIMITER_BYTES = 8;

class HttpResponseStream {
  // `metadata`: { statusCode, headers, cookies }. Returns `stream`, ready for the body.
  static from(stream, metadata) {
    stream.setContentType(CONTENT_TYPE);
    const prelude = JSON.stringify(metadata);
    stream._onBeforeFirstWrite = (write) => {
      write(prelude);
      write(new Uint8Array(DELIMITER_BYTES));
    };
    return stream;
  }
}

module.exports = { HttpResponseStream };
