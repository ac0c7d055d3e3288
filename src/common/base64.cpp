#include "funcd/common/base64.hpp"

#include <array>
#include <cstdint>

namespace funcd {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::int8_t kInvalid = -1;
constexpr std::int8_t kSkip = -2;  // whitespace: line-wrapped encoders (e.g. `base64` without -w0)

constexpr std::array<std::int8_t, 256> make_decode_table() {
    std::array<std::int8_t, 256> t{};
    for (auto& v : t) v = kInvalid;
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
    for (unsigned char c : {' ', '\t', '\r', '\n', '\f', '\v'}) t[c] = kSkip;
    return t;
}
constexpr auto kDecode = make_decode_table();

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size() / 4 * 3);
    std::uint32_t quad = 0;
    int have = 0;     // sextets collected in the current quantum
    int padding = 0;  // '=' seen; only whitespace and more '=' may follow
    for (unsigned char c : text) {
        const std::int8_t v = kDecode[c];
        if (v == kSkip) continue;
        if (c == '=') {
            // Padding is only legal in the last two positions of a quantum with >= 2 data sextets.
            if (have + padding < 2 || have + padding >= 4) return std::nullopt;
            ++padding;
            continue;
        }
        if (v == kInvalid || padding > 0) return std::nullopt;
        quad = (quad << 6) | static_cast<std::uint32_t>(v);
        if (++have == 4) {
            out.push_back(static_cast<char>(quad >> 16));
            out.push_back(static_cast<char>(quad >> 8));
            out.push_back(static_cast<char>(quad));
            quad = 0;
            have = 0;
        }
    }
    if (have == 0 && padding == 0) return out;
    if (have + padding != 4) return std::nullopt;  // unpadded or truncated tail
    // Non-zero bits below the last full byte mean the text was not produced by an encoder.
    if (have == 2) {
        if (quad & 0x0f) return std::nullopt;
        out.push_back(static_cast<char>(quad >> 4));
    } else {  // have == 3
        if (quad & 0x03) return std::nullopt;
        out.push_back(static_cast<char>(quad >> 10));
        out.push_back(static_cast<char>(quad >> 2));
    }
    return out;
}

std::string base64_encode(std::string_view data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(data[k])); };
    for (; i + 3 <= data.size(); i += 3) {
        const std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(kAlphabet[(v >> 6) & 63]);
        out.push_back(kAlphabet[v & 63]);
    }
    const std::size_t rest = data.size() - i;
    if (rest > 0) {
        const std::uint32_t v = (byte(i) << 16) | (rest == 2 ? byte(i + 1) << 8 : 0);
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

}  // namespace funcd
