#include "funcd/metering/usage_record_json.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <iterator>
#include <limits>
#include <string>

#include <fmt/compile.h>
#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"

namespace funcd {
namespace {

std::optional<std::int64_t> int_field(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    if (it->is_number_unsigned() &&
        it->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return std::nullopt;
    return it->get<std::int64_t>();
}

std::optional<std::string> string_field(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

// True when `s` can go into JSON between quotes as it is: printable ASCII without
// quote or backslash. Request ids and function names always are.
bool plain_json_string(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
}

// A JSON number as nlohmann::json writes a double in this range: shortest round-trip
// digits in fixed notation, ".0" when integral.
void append_json_double(fmt::memory_buffer& out, double v) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    if (ec != std::errc{}) {
        fmt::format_to(std::back_inserter(out), "{}", v);
        return;
    }
    out.append(buf, end);
    if (std::find(buf, end, '.') == end) out.append(std::string_view(".0"));
}

// format_rfc3339(t) without snprintf: the same 24 characters for years 0 to 9999.
void append_rfc3339(fmt::memory_buffer& out, SystemTime t) {
    using namespace std::chrono;
    const auto ms = floor<milliseconds>(t);
    const auto day = floor<days>(ms);
    const year_month_day ymd{day};
    const hh_mm_ss hms{ms - day};
    const int year = static_cast<int>(ymd.year());
    if (year < 0 || year > 9999) {
        out.append(format_rfc3339(t));
        return;
    }
    char text[] = "0000-00-00T00:00:00.000Z";
    auto put = [&text](int at, unsigned value, int digits) {
        for (int i = digits - 1; i >= 0; --i, value /= 10) text[at + i] = static_cast<char>('0' + value % 10);
    };
    put(0, static_cast<unsigned>(year), 4);
    put(5, static_cast<unsigned>(ymd.month()), 2);
    put(8, static_cast<unsigned>(ymd.day()), 2);
    put(11, static_cast<unsigned>(hms.hours().count()), 2);
    put(14, static_cast<unsigned>(hms.minutes().count()), 2);
    put(17, static_cast<unsigned>(hms.seconds().count()), 2);
    put(20, static_cast<unsigned>(hms.subseconds().count()), 3);
    out.append(std::string_view(text, sizeof text - 1));
}

}  // namespace

nlohmann::json to_json(const UsageRecord& r) {
    nlohmann::json j = {
        {"request_id", r.request_id},
        {"function", r.function},
        {"version", r.version},
        {"start", format_rfc3339(r.start)},
        {"start_us", to_unix_us(r.start)},
        {"duration_us", r.duration_us},
        {"duration_ms", static_cast<double>(r.duration_us) / 1000.0},
        {"billed_ms", r.billed_ms},
        {"memory_mb", r.memory_mb},
        {"max_memory_used_mb", r.max_memory_used_mb},
        {"init_duration_us", nullptr},
        {"init_duration_ms", nullptr},
        {"outcome", to_string(r.outcome)},
        {"trace_id", r.trace_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.trace_id)},
        {"trigger", r.trigger.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.trigger)},
    };
    if (r.init_duration_us) {
        j["init_duration_us"] = *r.init_duration_us;
        j["init_duration_ms"] = static_cast<double>(*r.init_duration_us) / 1000.0;
    }
    return j;
}

std::optional<UsageRecord> usage_record_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return std::nullopt;
    auto request_id = string_field(j, "request_id");
    auto function = string_field(j, "function");
    auto outcome_text = string_field(j, "outcome");
    auto version = int_field(j, "version");
    auto duration_us = int_field(j, "duration_us");
    auto billed_ms = int_field(j, "billed_ms");
    auto memory_mb = int_field(j, "memory_mb");
    auto max_memory = int_field(j, "max_memory_used_mb");
    if (!request_id || request_id->empty() || !function || function->empty() || !outcome_text || !version ||
        !duration_us || !billed_ms || !memory_mb || !max_memory)
        return std::nullopt;
    if (*memory_mb < 0 || *memory_mb > std::numeric_limits<int>::max()) return std::nullopt;
    auto outcome = parse_outcome(*outcome_text);
    if (!outcome) return std::nullopt;

    // start_us is exact; the RFC 3339 form only carries milliseconds.
    std::optional<SystemTime> start;
    if (auto us = int_field(j, "start_us"))
        start = from_unix_us(*us);
    else if (auto text = string_field(j, "start"))
        start = parse_rfc3339(*text);
    if (!start) return std::nullopt;

    UsageRecord r;
    auto init = j.find("init_duration_us");
    if (init != j.end() && !init->is_null()) {
        auto us = int_field(j, "init_duration_us");
        if (!us) return std::nullopt;
        r.init_duration_us = *us;
    }
    r.request_id = std::move(*request_id);
    r.function = std::move(*function);
    r.version = *version;
    r.start = *start;
    r.duration_us = *duration_us;
    r.billed_ms = *billed_ms;
    r.memory_mb = static_cast<int>(*memory_mb);
    r.max_memory_used_mb = *max_memory;
    r.outcome = *outcome;
    // Both absent from records of earlier versions.
    if (auto trace = string_field(j, "trace_id")) r.trace_id = std::move(*trace);
    if (auto trigger = string_field(j, "trigger")) r.trigger = std::move(*trigger);
    return r;
}

void append_journal_line(const UsageRecord& r, fmt::memory_buffer& out) {
    if (!plain_json_string(r.request_id) || !plain_json_string(r.function) || !plain_json_string(r.trace_id) ||
        !plain_json_string(r.trigger)) {
        // Replacing invalid UTF-8 instead of throwing: a byte-exact name matters less than the record.
        const std::string line = to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        out.append(line);
        out.push_back('\n');
        return;
    }
    // The same document as to_json(r).dump(), keys in its sorted order.
    auto it = std::back_inserter(out);
    fmt::format_to(it, FMT_COMPILE(R"({{"billed_ms":{},"duration_ms":)"), r.billed_ms);
    append_json_double(out, static_cast<double>(r.duration_us) / 1000.0);
    fmt::format_to(it, FMT_COMPILE(R"(,"duration_us":{},"function":"{}","init_duration_ms":)"), r.duration_us,
                   r.function);
    if (r.init_duration_us) {
        append_json_double(out, static_cast<double>(*r.init_duration_us) / 1000.0);
        fmt::format_to(it, FMT_COMPILE(R"(,"init_duration_us":{})"), *r.init_duration_us);
    } else {
        out.append(std::string_view(R"(null,"init_duration_us":null)"));
    }
    fmt::format_to(it,
                   FMT_COMPILE(R"(,"max_memory_used_mb":{},"memory_mb":{},"outcome":"{}","request_id":"{}","start":")"),
                   r.max_memory_used_mb, r.memory_mb, to_string(r.outcome), r.request_id);
    append_rfc3339(out, r.start);
    fmt::format_to(it, FMT_COMPILE(R"(","start_us":{},"trace_id":)"), to_unix_us(r.start));
    auto append_optional = [&out](const std::string& v) {
        if (v.empty()) {
            out.append(std::string_view("null"));
            return;
        }
        out.push_back('"');
        out.append(v);
        out.push_back('"');
    };
    append_optional(r.trace_id);
    out.append(std::string_view(R"(,"trigger":)"));
    append_optional(r.trigger);
    fmt::format_to(it, FMT_COMPILE(R"(,"version":{}}})" "\n"), r.version);
}

}  // namespace funcd
