#pragma once
// AWS Signature Version 4 (header form), checked the way AWS checks it for every
// service but S3, so the aws CLI, boto3 and the other AWS SDKs can call the Lambda API
// with nothing but an endpoint URL and a key pair.
// Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
//
// Authorization: AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/lambda/aws4_request,
//                SignedHeaders=host;x-amz-date, Signature=<64 lower-case hex digits>
//
// Query-string (presigned URL) signing and the Date header in place of X-Amz-Date are not
// accepted: no SDK uses either for the Lambda API.
#include <array>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace funcd::sigv4 {

using SystemTime = std::chrono::system_clock::time_point;

// How far a request's X-Amz-Date may be from the verifier's clock, either way: AWS's own
// limit, and the one its "Signature expired" messages name.
inline constexpr auto kClockSkew = std::chrono::minutes(5);

// Every rejection is answered with this status, as AWS does.
inline constexpr int kForbidden = 403;

struct Credential {
    std::string access_key_id;
    std::string secret_access_key;
    std::string principal;  // opaque to the verifier, handed back on success
};

// A request as it arrived. Views only: the caller keeps the strings alive.
struct RequestView {
    std::string_view method;
    std::string_view target;  // path?query exactly as on the wire (still percent-encoded)
    std::span<const std::pair<std::string, std::string>> headers;  // lower-case names, repeats kept, in order
    std::string_view body;
};

// Who signed a verified request.
struct Identity {
    std::string access_key_id;
    std::string region;  // from the credential scope; any non-empty region is accepted
    std::string principal;
};

// What verify() decided. Errors carry the Lambda API's exception name and message, and
// all of them are answered with kForbidden.
class Verification {
public:
    static Verification ok(Identity identity);
    // No Authorization header at all.
    static Verification missing();
    // The Authorization header or the headers it depends on are malformed; `message` says how.
    static Verification incomplete(std::string message);
    static Verification unknown_key();
    // X-Amz-Date more than kClockSkew before / after `now`.
    static Verification expired(SystemTime request_time, SystemTime now);
    static Verification not_yet_current(SystemTime request_time, SystemTime now);
    static Verification mismatch();
    // A well-formed credential scope that is not this service's (another service, no region,
    // a date that is not the request's): AWS reports these as InvalidSignatureException.
    static Verification wrong_scope(std::string message);

    bool ok() const { return error_type_.empty(); }
    const Identity& identity() const { return identity_; }  // empty unless ok()
    const std::string& error_type() const { return error_type_; }
    const std::string& message() const { return message_; }
    int status() const { return ok() ? 200 : kForbidden; }

private:
    Verification(std::string error_type, std::string message)
        : error_type_(std::move(error_type)), message_(std::move(message)) {}
    explicit Verification(Identity identity) : identity_(std::move(identity)) {}

    Identity identity_;
    std::string error_type_;
    std::string message_;
};

class Verifier {
public:
    using Clock = std::function<SystemTime()>;

    // Throws std::invalid_argument when two credentials share an access key id or one has
    // an empty id or secret.
    explicit Verifier(std::vector<Credential> credentials, std::string service = "lambda",
                      Clock clock = [] { return std::chrono::system_clock::now(); });

    // Checks, in this order: that there is an Authorization header, its form, X-Amz-Date,
    // the credential scope (service, terminator, date equal to X-Amz-Date's), that host and
    // x-amz-date are signed, the access key id, the clock, that x-amz-content-sha256 (when
    // sent) is the body's SHA-256, and last the signature over the path-normalised
    // canonical request. X-Amz-Security-Token is signed like any header when listed and
    // otherwise ignored. Thread-safe.
    Verification verify(const RequestView& request) const;
    // Everything verify() checks before it needs the body: the head's form, the key and
    // the clock. A request that fails here is refused before its body is read. Thread-safe.
    Verification verify_head(const RequestView& request) const;

private:
    // The key HMAC-SHA256 derives from a secret for one date, region and service.
    using SigningKey = std::array<unsigned char, 32>;

    // Keyed by "AKID/YYYYMMDD/REGION", the head of the credential scope (the service is
    // the verifier's own).
    std::optional<SigningKey> cached_key(const std::string& scope_head) const;
    void remember(std::string scope_head, const SigningKey& key) const;

    std::unordered_map<std::string, Credential> credentials_;  // by access key id
    std::string service_;
    Clock clock_;

    // Deriving a key costs four HMACs; a verified request then costs one more.
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, SigningKey> signing_keys_;
};

// The steps of the signature, public for the test suite and for clients (tests,
// benchmarks) that sign requests themselves.

// The path as the client signed it: dot segments resolved and empty segments dropped
// (when `normalize`), then percent-encoded once more, keeping '/' and the unreserved
// characters, so every '%' already on the wire becomes "%25".
std::string canonical_uri(std::string_view raw_path, bool normalize = true);

// The query's parameters decoded, re-encoded the one canonical way, sorted by name and
// then value, and joined as name=value&...
std::string canonical_query(std::string_view raw_query);

// METHOD\nURI\nQUERY\nHEADERS\n\nSIGNEDHEADERS\nPAYLOADHASH. A signed header absent from
// the request canonicalises as "name:", so the signature cannot match.
std::string canonical_request(const RequestView& request, std::span<const std::string> signed_headers,
                              std::string_view payload_hash, bool normalize_path = true);

// AWS4-HMAC-SHA256\nAMZDATE\nSCOPE\nhex SHA-256 of the canonical request, where SCOPE is
// YYYYMMDD/REGION/SERVICE/aws4_request.
std::string string_to_sign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);

// Lower-case hex HMAC-SHA256 of `string_to_sign` under the key derived from `secret` for
// date/region/service.
std::string signature(std::string_view secret, std::string_view date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign);

// The Authorization header value for `request`, signing `signed_headers` (lower-case,
// sorted; each must be among request.headers, host and x-amz-date included) with
// X-Amz-Date `amz_date`. The payload hash is the body's SHA-256, so an
// x-amz-content-sha256 header, if any, has to hold that.
std::string authorization(const RequestView& request, std::span<const std::string> signed_headers,
                          const Credential& credential, std::string_view amz_date, std::string_view region,
                          std::string_view service);

// X-Amz-Date's form, ISO 8601 basic in UTC: 20150830T123600Z (whole seconds, truncated).
std::string format_amz_date(SystemTime t);
// Reads that form back; nullopt unless it is exactly YYYYMMDDTHHMMSSZ and a valid time.
std::optional<SystemTime> parse_amz_date(std::string_view text);

}  // namespace funcd::sigv4
