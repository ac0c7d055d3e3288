// AWS Signature Version 4 as the Lambda API checks it (funcd::sigv4): the canonical URI and
// query, and Verifier::verify on arbitrary request heads and on requests signed the way the
// AWS SDKs sign them.
//
// Input (FuzzedDataProvider): a method, a target, headers, a body, a region and a few
// choices.
//
// Invariants:
// - the canonical URI holds only unreserved characters, '/' and upper-case %XX escapes, and
//   when normalised no empty, '.' or '..' segment; the canonical query is its own canonical
//   form;
// - an arbitrary head never verifies (no Authorization made with the secret), every
//   rejection is a 403 with an exception name and a message (UTF-8 when the request was),
//   and a head that verify_head() accepts fails verify() only as a mismatch;
// - a request signed with authorization() verifies, with its region, and stops verifying
//   when one digit of its signature, its body or a signed header changes.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>
#include <spdlog/spdlog.h>

#include "../fuzz_check.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/utf8.hpp"
#include "funcd/lambda_api/sigv4.hpp"

namespace {

namespace sigv4 = funcd::sigv4;
using Headers = std::vector<std::pair<std::string, std::string>>;

const sigv4::Credential kCredential{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "fuzz"};
const sigv4::SystemTime kNow = sigv4::SystemTime(std::chrono::seconds(1'767'225'600));  // 2026-01-01

bool is_unreserved(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

bool is_upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

void check_encoded(std::string_view s, bool slash_allowed, std::string_view what) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (is_unreserved(s[i]) || (slash_allowed && s[i] == '/')) continue;
        FUZZ_CHECK(s[i] == '%' && i + 2 < s.size() && is_upper_hex(s[i + 1]) && is_upper_hex(s[i + 2]),
                   std::string(what) + " '" + std::string(s) + "' has a raw byte at " + std::to_string(i));
        i += 2;
    }
}

void check_canonical(std::string_view target) {
    const auto q = target.find('?');
    const auto path = target.substr(0, q);
    const auto query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

    const std::string raw = sigv4::canonical_uri(path, false);
    check_encoded(raw, true, "canonical URI");
    const std::string normal = sigv4::canonical_uri(path, true);
    check_encoded(normal, true, "normalised canonical URI");
    FUZZ_CHECK(!normal.empty(), "an empty canonical URI");
    std::string_view rest = normal;
    if (rest.starts_with('/')) rest.remove_prefix(1);
    if (rest.ends_with('/')) rest.remove_suffix(1);
    while (!rest.empty()) {
        const auto seg = rest.substr(0, rest.find('/'));
        FUZZ_CHECK(!seg.empty() && seg != "." && seg != "..", "segment '" + std::string(seg) + "' in " + normal);
        rest.remove_prefix(std::min(rest.size(), seg.size() + 1));
    }

    const std::string canonical = sigv4::canonical_query(query);
    FUZZ_CHECK(sigv4::canonical_query(canonical) == canonical, "canonical query '" + canonical + "' is not canonical");
    std::string_view pieces = canonical;
    while (!pieces.empty()) {
        const auto piece = pieces.substr(0, pieces.find('&'));
        const auto eq = piece.find('=');
        FUZZ_CHECK(eq != std::string_view::npos, "a parameter without '=' in " + canonical);
        check_encoded(piece.substr(0, eq), false, "query name");
        check_encoded(piece.substr(eq + 1), false, "query value");
        pieces.remove_prefix(std::min(pieces.size(), piece.size() + 1));
    }
}

void check_rejection(const sigv4::Verification& v, bool request_is_utf8) {
    FUZZ_CHECK(!v.ok(), "an unsigned request verified");
    FUZZ_CHECK(v.status() == sigv4::kForbidden, "rejected with " + std::to_string(v.status()));
    FUZZ_CHECK(!v.error_type().empty() && !v.message().empty(), "a rejection without a name or a message");
    if (request_is_utf8)
        FUZZ_CHECK(funcd::is_valid_utf8(v.message()), "UTF-8 request, a rejection message that is not: " + v.message());
}

sigv4::RequestView view(std::string_view method, std::string_view target, const Headers& headers,
                        std::string_view body) {
    return {method, target, headers, body};
}

std::string region_from(std::string text) {
    text.erase(std::remove_if(text.begin(), text.end(),
                              [](char c) { return !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'); }),
               text.end());
    return text.empty() ? "us-east-1" : text;
}

bool is_signable_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const std::string method = in.ConsumeRandomLengthString(16);
    const std::string target = in.ConsumeRandomLengthString(256);
    Headers headers;
    const int count = in.ConsumeIntegralInRange(0, 8);
    for (int i = 0; i < count; ++i) {
        std::string name = in.ConsumeRandomLengthString(32);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
        // Up to 512 bytes: past the 256 characters of client text a rejection message quotes.
        headers.emplace_back(std::move(name), in.ConsumeRandomLengthString(512));
    }
    const std::string region = region_from(in.ConsumeRandomLengthString(16));
    const bool send_hash = in.ConsumeBool();
    const std::string body = in.ConsumeRemainingBytesAsString();

    check_canonical(target);
    bool utf8 = funcd::is_valid_utf8(method) && funcd::is_valid_utf8(target);
    for (const auto& [name, value] : headers) utf8 = utf8 && funcd::is_valid_utf8(name) && funcd::is_valid_utf8(value);

    const sigv4::Verifier verifier({kCredential}, "lambda", [] { return kNow; });

    // The head as it came, Authorization and X-Amz-Date included if the input has them.
    const auto head = verifier.verify_head(view(method, target, headers, body));
    const auto full = verifier.verify(view(method, target, headers, body));
    check_rejection(full, utf8);
    if (head.ok()) FUZZ_CHECK(full.error_type() == "InvalidSignatureException", "a good head failed as " + full.error_type());
    else check_rejection(head, utf8);

    // The same request signed as an SDK signs it: every header the client may sign is signed.
    Headers signed_request;
    for (auto& h : headers)
        if (h.first != "authorization" && h.first != "x-amz-date" && h.first != "x-amz-content-sha256")
            signed_request.push_back(h);
    signed_request.emplace_back("host", "localhost:9000");
    signed_request.emplace_back("x-amz-date", sigv4::format_amz_date(kNow));
    if (send_hash) signed_request.emplace_back("x-amz-content-sha256", funcd::sha256_hex(body));
    std::vector<std::string> names;
    for (const auto& [name, value] : signed_request)
        if (is_signable_name(name)) names.push_back(name);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    const std::string authorization = sigv4::authorization(view(method, target, signed_request, body), names,
                                                           kCredential, sigv4::format_amz_date(kNow), region, "lambda");
    signed_request.emplace_back("authorization", authorization);

    const auto good = verifier.verify(view(method, target, signed_request, body));
    FUZZ_CHECK(good.ok(), "a signed request failed: " + good.error_type() + ": " + good.message() + "\n" + authorization);
    FUZZ_CHECK(good.identity().region == region && good.identity().access_key_id == kCredential.access_key_id,
               "the identity is not the signer's");

    // One signature digit changed.
    Headers forged = signed_request;
    std::string& sig = forged.back().second;
    char& digit = sig[sig.size() - 1 - (body.size() % 64)];
    digit = digit == '0' ? '1' : '0';
    check_rejection(verifier.verify(view(method, target, forged, body)), utf8);
    // The body changed.
    check_rejection(verifier.verify(view(method, target, signed_request, body + "x")), utf8);
    // A signed header's value changed (the host, always signed).
    Headers moved = signed_request;
    for (auto& [name, value] : moved)
        if (name == "host") value = "elsewhere:9000";
    check_rejection(verifier.verify(view(method, target, moved, body)), utf8);
    return 0;
}
