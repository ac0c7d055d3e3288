#include "funcd/common/ids.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace funcd {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Random bytes are drawn from OpenSSL's CSPRNG this many at a time and handed out from a
// per-thread buffer. Every invocation needs 28 bytes (request id and trace id); asking
// RAND_bytes for each cost two getpid(2) calls (its fork check) and a DRBG round, about
// as much as the rest of the id work together. 4 KiB lasts ~140 invocations.
constexpr std::size_t kRandomBufferBytes = 4096;

// Bumped in every child a fork(2) creates (pthread_atfork), so a child never hands out the
// bytes its parent had buffered (or will hand out). clone(2) without fork handlers is only
// used to launch workers, which exec before generating any id.
std::atomic<unsigned> g_fork_generation{0};

void note_fork_in_child() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

struct RandomBuffer {
    std::array<unsigned char, kRandomBufferBytes> bytes;
    std::size_t used = kRandomBufferBytes;  // empty until the first refill
    unsigned generation = 0;
};

thread_local RandomBuffer t_random;

void fill_from_openssl(unsigned char* out, std::size_t n) {
    // RAND_bytes takes an int; callers ask for small amounts, but never truncate silently.
    while (n > 0) {
        const int chunk = static_cast<int>(std::min<std::size_t>(n, 1 << 20));
        if (RAND_bytes(out, chunk) != 1) throw std::runtime_error("the OS random generator failed");
        out += chunk;
        n -= static_cast<std::size_t>(chunk);
    }
}

void fill_random(unsigned char* out, std::size_t n) {
    static const bool registered = [] {
        ::pthread_atfork(nullptr, nullptr, note_fork_in_child);
        return true;
    }();
    (void)registered;

    if (n > kRandomBufferBytes / 4) return fill_from_openssl(out, n);  // large requests skip the buffer
    RandomBuffer& b = t_random;
    const unsigned generation = g_fork_generation.load(std::memory_order_relaxed);
    if (b.generation != generation) {
        b.used = b.bytes.size();
        b.generation = generation;
    }
    while (n > 0) {
        if (b.used == b.bytes.size()) {
            fill_from_openssl(b.bytes.data(), b.bytes.size());
            b.used = 0;
        }
        const std::size_t take = std::min(n, b.bytes.size() - b.used);
        std::memcpy(out, b.bytes.data() + b.used, take);
        // Handed-out bytes are not kept around in the buffer.
        std::memset(b.bytes.data() + b.used, 0, take);
        b.used += take;
        out += take;
        n -= take;
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

    std::string out(36, '-');
    char* p = out.data();
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) ++p;  // keeps the '-' already there
        *p++ = kHexDigits[b[i] >> 4];
        *p++ = kHexDigits[b[i] & 0x0f];
    }
    return out;
}

double uniform_draw() {
    std::uint64_t bits = 0;
    fill_random(reinterpret_cast<unsigned char*>(&bits), sizeof bits);
    // The top 53 bits fill a double's mantissa exactly: every value k / 2^53.
    return static_cast<double>(bits >> 11) * 0x1.0p-53;
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
