#include "funcd/common/trace_id.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include <fmt/format.h>

#include "funcd/common/ids.hpp"
#include "funcd/common/text.hpp"

namespace funcd {
namespace {

bool lower_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zeros(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

// 1-<8 hex>-<24 hex>: X-Ray's trace id format (version 1, epoch seconds, 96-bit identifier).
bool valid_root(std::string_view v) {
    return v.size() == 35 && v.substr(0, 2) == "1-" && v[10] == '-' && lower_hex(v.substr(2, 8)) &&
           lower_hex(v.substr(11, 24));
}

// A field name as X-Ray and load balancers write them (Root, Parent, Sampled, Lineage, Self).
bool valid_key(std::string_view k) {
    return !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

// Visible ASCII but the separators: what may reach logs and the ledger unescaped.
bool valid_value(std::string_view v) {
    return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
        return c > 0x20 && c < 0x7f && c != ';' && c != '=' && c != '"' && c != '\\';
    });
}

}  // namespace

std::optional<std::string> parse_amzn_trace_header(std::string_view header) {
    if (header.size() > kMaxTraceHeaderBytes) return std::nullopt;
    std::string root, others;
    bool parent = false, sampled = false;
    while (!header.empty()) {
        const auto semi = header.find(';');
        const std::string_view field = trim_ows(header.substr(0, semi));
        header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
        if (field.empty()) continue;  // "Root=...;" ends with an empty field
        const auto eq = field.find('=');
        if (eq == std::string_view::npos) return std::nullopt;
        const std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
        if (!valid_key(key) || !valid_value(value)) return std::nullopt;
        if (key == "Root") {
            if (!root.empty() || !valid_root(value)) return std::nullopt;
            root = value;
            continue;
        }
        if (key == "Parent") {
            if (parent || value.size() != 16 || !lower_hex(value)) return std::nullopt;
            parent = true;
        } else if (key == "Sampled") {
            if (sampled || (value != "0" && value != "1" && value != "?")) return std::nullopt;
            sampled = true;
        }
        others += ';';
        others += field;
    }
    if (root.empty()) return std::nullopt;
    return "Root=" + root + others;
}

std::optional<std::string> trace_from_traceparent(std::string_view header) {
    header = trim_ows(header);
    // version "-" trace-id "-" parent-id "-" flags; a later version may append fields after
    // another "-", which its version-00 prefix must still be readable without (W3C 4.3).
    if (header.size() < 55 || header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
    if (header.size() > 55 && header[55] != '-') return std::nullopt;
    const std::string_view version = header.substr(0, 2), trace = header.substr(3, 32),
                           parent = header.substr(36, 16), flags = header.substr(53, 2);
    if (!lower_hex(version) || version == "ff" || (version == "00" && header.size() != 55)) return std::nullopt;
    if (header.size() > kMaxTraceHeaderBytes) return std::nullopt;
    if (!lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags) || all_zeros(trace) || all_zeros(parent))
        return std::nullopt;
    const int flag_bits = std::stoi(std::string(flags), nullptr, 16);
    return fmt::format("Root=1-{}-{};Parent={};Sampled={}", trace.substr(0, 8), trace.substr(8), parent,
                       flag_bits & 1);
}

std::string new_trace_id() {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return fmt::format("Root=1-{:08x}-{};Parent={};Sampled=0", static_cast<std::uint32_t>(now), random_hex(12),
                       random_hex(8));
}

std::string trace_id_for(std::string_view amzn_header, std::string_view traceparent) {
    if (!amzn_header.empty())
        if (auto t = parse_amzn_trace_header(amzn_header)) return std::move(*t);
    if (!traceparent.empty())
        if (auto t = trace_from_traceparent(traceparent)) return std::move(*t);
    return new_trace_id();
}

std::string_view trace_root(std::string_view trace_id) {
    while (!trace_id.empty()) {
        const auto semi = trace_id.find(';');
        std::string_view field = trim_ows(trace_id.substr(0, semi));
        if (field.starts_with("Root=")) return field.substr(5);
        if (semi == std::string_view::npos) break;
        trace_id.remove_prefix(semi + 1);
    }
    return {};
}

}  // namespace funcd
