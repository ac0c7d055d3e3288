#include "funcd/common/ids.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string_view>

namespace funcd {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void fill_random(unsigned char* out, std::size_t n) {
    // RAND_bytes takes an int; callers ask for small amounts, but never truncate silently.
    while (n > 0) {
        const int chunk = static_cast<int>(std::min<std::size_t>(n, 1 << 20));
        if (RAND_bytes(out, chunk) != 1) throw std::runtime_error("the OS random generator failed");
        out += chunk;
        n -= static_cast<std::size_t>(chunk);
    }
}

void append_hex(std::string& out, const unsigned char* data, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(kHexDigits[data[i] >> 4]);
        out.push_back(kHexDigits[data[i] & 0x0f]);
    }
}

}  // namespace

std::string new_uuid() {
    std::array<unsigned char, 16> b;
    fill_random(b.data(), b.size());
    // RFC 9562 section 5.4: version 4 in the high nibble of byte 6, variant 10xx in byte 8.
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);

    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        append_hex(out, &b[i], 1);
    }
    return out;
}

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    fill_random(reinterpret_cast<unsigned char*>(raw.data()), bytes);
    std::string out;
    out.reserve(bytes * 2);
    append_hex(out, reinterpret_cast<const unsigned char*>(raw.data()), bytes);
    return out;
}

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md;
    unsigned int md_len = 0;
    if (EVP_Digest(data.data(), data.size(), md.data(), &md_len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 computation failed");
    std::string out;
    out.reserve(md_len * 2);
    append_hex(out, md.data(), md_len);
    return out;
}

}  // namespace funcd
