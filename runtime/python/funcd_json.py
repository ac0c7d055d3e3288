"""JSON for the runtime without importing the `json` package.

json.decoder and json.encoder compile regular expressions when imported, which pulls in
`re` and `enum`: about a third of a Python cold start. Both packages do the real work in
the C accelerator `_json`, so this module drives `_json` the way json.dumps and json.loads
do with their default arguments, and its results are theirs. Whatever it does not
handle the way json would (a byte order mark, UTF-16 or UTF-32 input, any decode error,
a missing or changed `_json`) goes to the real `json` package, imported on demand, so
error messages and edge cases stay exactly json's.
"""

# JSON's whitespace, which json.decoder skips around a document.
_WHITESPACE = " \t\n\r"
# json.loads reads bytes as UTF-16 or UTF-32 when they start with a byte order mark or have
# NUL bytes among the first four, and skips a UTF-8 mark; all of that is left to it.
_BYTE_ORDER_MARKS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_ENCODING_PROBE_BYTES = 4
# json.encoder's separators when no indent is asked for.
_ITEM_SEPARATOR = ", "
_KEY_SEPARATOR = ": "


class _NotHandledHere(Exception):
    """Input the fast path leaves to json, which decides what it means or what is wrong."""


class _DecoderSettings:
    """The attributes `_json.make_scanner` reads, set as json.decoder.JSONDecoder() sets them."""

    def __init__(self):
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        # float and int themselves, not wrappers: the scanner has fast paths for exactly these.
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                               "NaN": float("nan")}.__getitem__
        self.memo = {}


def _default(o):
    # json.JSONEncoder.default's error, word for word.
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


try:
    from _json import encode_basestring_ascii as _encode_string
    from _json import make_encoder as _make_encoder
    from _json import make_scanner as _make_scanner

    _scan = _make_scanner(_DecoderSettings())
    # Built once here only to prove the signature matches what this module passes.
    _make_encoder({}, _default, _encode_string, None, _KEY_SEPARATOR, _ITEM_SEPARATOR,
                  False, False, True)
except Exception:  # no accelerator, or one that changed: json itself copes
    _scan = _make_encoder = None


def _json():
    import json
    return json


def dumps(obj, allow_nan=True):
    """json.dumps(obj, allow_nan=allow_nan): same text, same TypeError and ValueError."""
    if _make_encoder is None:
        return _json().dumps(obj, allow_nan=allow_nan)
    if isinstance(obj, str):
        return _encode_string(obj)
    # A fresh marker dict per call, as json.encoder makes one: when encoding fails midway
    # the C encoder leaves its containers marked, and encoding them again would then
    # fail as a circular reference.
    encode = _make_encoder({}, _default, _encode_string, None, _KEY_SEPARATOR,
                           _ITEM_SEPARATOR, False, False, allow_nan)
    return "".join(encode(obj, 0))


def loads(data):
    """json.loads(data) for str, bytes or bytearray: same value, same exception."""
    if _scan is not None:
        try:
            return _loads(data)
        except Exception:
            pass  # decoded again below so that json raises its own error, in its own words
    return _json().loads(data)


def _loads(data):
    if isinstance(data, (bytes, bytearray)):
        if data.startswith(_BYTE_ORDER_MARKS) or b"\0" in data[:_ENCODING_PROBE_BYTES]:
            raise _NotHandledHere
        text = data.decode("utf-8", "surrogatepass")
    elif isinstance(data, str):
        text = data
    else:
        raise _NotHandledHere
    # str.lstrip/rstrip return the string itself when there is nothing to strip, so a
    # multi-megabyte event is not copied to find its ends.
    start = len(text) - len(text.lstrip(_WHITESPACE))
    obj, end = _scan(text, start)
    if len(text.rstrip(_WHITESPACE)) > end:
        raise _NotHandledHere  # data after the document
    return obj
