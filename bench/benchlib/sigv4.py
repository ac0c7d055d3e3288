"""SigV4 signing of one request, as botocore signs an Invoke (signed headers host and
x-amz-date, the body's SHA-256), for load tools that replay one signed request: a
signature stays valid for the 5 minutes AWS allows, longer than any run here."""
import datetime
import hashlib
import hmac
import urllib.parse

_UNRESERVED = "-_.~"


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(method, host, path, body, access_key, secret, region="us-east-1", service="lambda", now=None):
    """Headers (X-Amz-Date, Authorization) for `method host path` with `body` (bytes);
    `path` is as sent, percent-encoded."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    # Every service but S3 signs the path encoded once more.
    canonical_uri = urllib.parse.quote(path, safe="/" + _UNRESERVED)
    canonical = "\n".join([method, canonical_uri, "", "host:%s" % host, "x-amz-date:%s" % amz_date, "",
                           "host;x-amz-date", hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (date, region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), date), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {"X-Amz-Date": amz_date,
            "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=host;x-amz-date, Signature=%s"
                             % (access_key, scope, signature)}
