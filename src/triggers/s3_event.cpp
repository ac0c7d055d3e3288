#include "funcd/triggers/s3_event.hpp"

#include "funcd/common/base64.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/time_format.hpp"
#include "funcd/common/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>
#include <vector>

namespace funcd {
namespace {

// "Event message structure": 2.1 is the record version S3 sends for object-created events;
// "1.0" is the only s3SchemaVersion there is.
constexpr const char* kEventVersion = "2.1";
constexpr const char* kS3SchemaVersion = "1.0";
constexpr const char* kEventName = "ObjectCreated:Put";
// inotify does not say which process or user wrote a file, so the identities name the
// service and the source is the host itself.
constexpr const char* kPrincipal = "funcd";
constexpr const char* kSourceIp = "127.0.0.1";
// S3's request ids are 16 upper-case hex digits; its x-amz-id-2 host ids are base64 of
// about this many bytes.
constexpr std::size_t kRequestIdBytes = 8;
constexpr std::size_t kHostIdBytes = 48;
// Wide enough for any nanosecond count a 64-bit clock holds, and as wide as S3's own.
constexpr int kSequencerDigits = 18;

// Reads per chunk: a multi-gigabyte upload then costs a few thousand syscalls, and a pool
// thread holds only this much of it at a time.
constexpr std::size_t kDigestChunkBytes = 256 * 1024;

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n;
        std::uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) return false;  // truncated sequence
        for (std::size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
        constexpr std::uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMinForLength[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
        i += n + 1;
    }
    return true;
}

// Names come from the filesystem, which allows any bytes; JSON needs UTF-8.
std::string json_safe(std::string_view s) { return valid_utf8(s) ? std::string(s) : s3_encode_key(s); }

int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

std::string random_base64(std::size_t bytes) {
    const std::string hex = random_hex(bytes);
    std::string raw(bytes, '\0');
    for (std::size_t i = 0; i < bytes; ++i)
        raw[i] = static_cast<char>(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    return base64_encode(raw);
}

std::string upper(std::string s) {
    for (auto& c : s)
        if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

}  // namespace

std::string s3_encode_key(std::string_view key) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(key.size());
    for (const char ch : key) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '-' ||
            c == '_' || c == '.' || c == '*') {
            out.push_back(ch);
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0x0F]);
        }
    }
    return out;
}

std::string s3_bucket_name(const std::filesystem::path& directory) {
    std::filesystem::path p = directory.lexically_normal();
    if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
    std::string name = p.filename().string();
    // "/" has no last element; the filesystem root plays a bucket named after it.
    if (name.empty()) name = "root";
    return json_safe(name);
}

std::string s3_sequencer(std::chrono::system_clock::time_point t) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%0*llX", kSequencerDigits,
                  static_cast<unsigned long long>(ns < 0 ? 0 : ns));
    return buf;
}

nlohmann::json make_s3_event(const FileEvent& e, const std::string& trigger_name, const std::string& etag,
                             std::string_view region) {
    const std::string bucket = s3_bucket_name(e.directory);
    nlohmann::json record = {
        {"eventVersion", kEventVersion},
        {"eventSource", "aws:s3"},
        {"awsRegion", json_safe(region)},
        {"eventTime", format_rfc3339(e.time)},
        {"eventName", kEventName},
        {"userIdentity", {{"principalId", kPrincipal}}},
        {"requestParameters", {{"sourceIPAddress", kSourceIp}}},
        {"responseElements",
         {{"x-amz-request-id", upper(random_hex(kRequestIdBytes))}, {"x-amz-id-2", random_base64(kHostIdBytes)}}},
        {"s3",
         {{"s3SchemaVersion", kS3SchemaVersion},
          {"configurationId", json_safe(trigger_name)},
          {"bucket",
           {{"name", bucket}, {"ownerIdentity", {{"principalId", kPrincipal}}}, {"arn", "arn:aws:s3:::" + bucket}}},
          {"object",
           {{"key", s3_encode_key(e.key)},
            {"size", e.size},
            {"eTag", json_safe(etag)},
            {"sequencer", s3_sequencer(e.time)}}}}},
    };
    return {{"Records", nlohmann::json::array({std::move(record)})}};
}

std::string file_etag(const std::filesystem::path& file) {
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        const int err = errno;
        spdlog::debug("file_etag: open {} failed: {} (errno {})", file.string(), std::strerror(err), err);
        throw std::system_error(err, std::generic_category(), "file_etag: open " + file.string());
    }

    const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx) throw std::system_error(ENOMEM, std::generic_category(), "file_etag: EVP_MD_CTX_new");
    // A FIPS-only OpenSSL refuses MD5 here.
    if (EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1)
        throw std::system_error(ENOTSUP, std::generic_category(), "file_etag: MD5 is not available from OpenSSL");

    std::vector<unsigned char> chunk(kDigestChunkBytes);
    for (;;) {
        const ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            spdlog::debug("file_etag: read {} failed: {} (errno {})", file.string(), std::strerror(err), err);
            throw std::system_error(err, std::generic_category(), "file_etag: read " + file.string());
        }
        if (n == 0) break;
        if (EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<std::size_t>(n)) != 1)
            throw std::system_error(EIO, std::generic_category(), "file_etag: MD5 update for " + file.string());
    }

    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx.get(), md.data(), &len) != 1)
        throw std::system_error(EIO, std::generic_category(), "file_etag: MD5 final for " + file.string());
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(kHex[md[i] >> 4]);
        out.push_back(kHex[md[i] & 0x0F]);
    }
    return out;
}

}  // namespace funcd
