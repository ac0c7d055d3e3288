#include "funcd/common/time_format.hpp"

#include <cstdio>

namespace funcd {

using namespace std::chrono;

std::string format_rfc3339(SystemTime t) {
    // floor, not duration_cast, so instants before 1970 land on the right day and millisecond.
    const auto ms = floor<milliseconds>(t);
    const auto day = floor<days>(ms);
    const year_month_day ymd{day};
    const hh_mm_ss hms{ms - day};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02lld.%03lldZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<long long>(hms.seconds().count()),
                  static_cast<long long>(hms.subseconds().count()));
    return buf;
}

namespace {

// Reads exactly `n` ASCII digits at `pos`.
bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    pos += n;
    return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
    if (pos >= s.size() || s[pos] != c) return false;
    ++pos;
    return true;
}

}  // namespace

std::optional<SystemTime> parse_rfc3339(std::string_view s) {
    std::size_t pos = 0;
    int y, mo, d, h, mi, sec;
    if (!read_digits(s, pos, 4, y) || !expect(s, pos, '-') || !read_digits(s, pos, 2, mo) ||
        !expect(s, pos, '-') || !read_digits(s, pos, 2, d))
        return std::nullopt;
    if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't')) return std::nullopt;
    ++pos;
    if (!read_digits(s, pos, 2, h) || !expect(s, pos, ':') || !read_digits(s, pos, 2, mi) ||
        !expect(s, pos, ':') || !read_digits(s, pos, 2, sec))
        return std::nullopt;

    // Leap seconds (:60) are not representable in system_clock, so they are rejected.
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;

    nanoseconds frac{0};
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        const std::size_t start = pos;
        long long ns = 0;
        for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos) {
            // Digits past nanoseconds cannot change a system_clock value; accept and drop them.
            if (pos - start < 9) ns = ns * 10 + (s[pos] - '0');
        }
        if (pos == start) return std::nullopt;
        for (std::size_t n = pos - start; n < 9; ++n) ns *= 10;
        frac = nanoseconds{ns};
    }

    minutes offset{0};
    if (pos >= s.size()) return std::nullopt;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
        const bool negative = s[pos] == '-';
        ++pos;
        int oh, om;
        if (!read_digits(s, pos, 2, oh) || !expect(s, pos, ':') || !read_digits(s, pos, 2, om) || oh > 23 ||
            om > 59)
            return std::nullopt;
        offset = hours{oh} + minutes{om};
        if (negative) offset = -offset;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;

    // system_clock counts nanoseconds in 64 bits, which ends in 2262: later (or much
    // earlier) times are clamped rather than left to wrap around.
    const seconds whole = sys_days{ymd}.time_since_epoch() + hours{h} + minutes{mi} + seconds{sec} - offset;
    constexpr auto kMaxSeconds = duration_cast<seconds>(SystemTime::duration::max()).count() - 1;
    if (whole.count() > kMaxSeconds) return SystemTime::max();
    if (whole.count() < -kMaxSeconds) return SystemTime::min();
    return SystemTime(duration_cast<SystemTime::duration>(whole) + duration_cast<SystemTime::duration>(frac));
}

}  // namespace funcd
