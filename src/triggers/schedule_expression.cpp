#include "funcd/triggers/schedule_expression.hpp"

#include <array>
#include <bit>
#include <cctype>
#include <charconv>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include "funcd/common/api_error.hpp"
#include "funcd/common/text.hpp"

namespace funcd {
namespace {

using namespace std::chrono;

// Longer rate periods are refused so that anchor + k * period stays far inside
// system_clock's range (nanoseconds in int64: about +-292 years around 1970).
constexpr auto kMaxRatePeriod = days{36500};
// Enough digits for any legal field value (years are four) or rate value; longer
// numbers are rejected before conversion so they cannot overflow.
constexpr std::size_t kMaxNumberDigits = 9;

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kWeekdayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

// One row of the field table on EventBridge's "Cron expressions reference" page.
struct FieldSpec {
    std::string_view name;
    int min;
    int max;
    std::span<const std::string_view> names;  // names[0] stands for `min`
    std::string_view wildcards;
    std::string_view values;  // as the page words the allowed values
};

constexpr FieldSpec kMinutes{"minutes", 0, 59, {}, ", - * /", "0-59"};
constexpr FieldSpec kHours{"hours", 0, 23, {}, ", - * /", "0-23"};
constexpr FieldSpec kDayOfMonth{"day-of-month", 1, 31, {}, ", - * ? / L W", "1-31"};
constexpr FieldSpec kMonth{"month", 1, 12, kMonthNames, ", - * /", "1-12 or JAN-DEC"};
constexpr FieldSpec kDayOfWeek{"day-of-week", 1, 7, kWeekdayNames, ", - * ? L #", "1-7 or SUN-SAT"};
constexpr FieldSpec kYear{"year", ScheduleExpression::kFirstYear, ScheduleExpression::kLastYear, {}, ", - * /",
                          "1970-2199"};

constexpr std::string_view kForms =
    "expression: must be rate(value unit) or cron(minutes hours day-of-month month day-of-week year)";

[[noreturn]] void fail_field(const FieldSpec& field, std::string_view part, std::string_view why) {
    throw ApiError::bad_parameter("expression: cron " + std::string(field.name) + " field '" + std::string(part) +
                                  "': " + std::string(why));
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

// Digits only; nullopt when not a number or too long to be a legal value.
std::optional<int> to_int(std::string_view s) {
    if (!all_digits(s) || s.size() > kMaxNumberDigits) return std::nullopt;
    int v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (true) {
        const auto at = s.find(sep, start);
        out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
        if (at == std::string_view::npos) return out;
        start = at + 1;
    }
}

std::vector<std::string_view> split_whitespace(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        const auto start = i;
        while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        if (i > start) out.push_back(s.substr(start, i - start));
    }
    return out;
}

// A number or (case-insensitive) name in the field's range.
int parse_value(const FieldSpec& field, std::string_view token) {
    if (const auto v = to_int(token)) {
        if (*v >= field.min && *v <= field.max) return *v;
    } else {
        for (std::size_t i = 0; i < field.names.size(); ++i)
            if (iequals(token, field.names[i])) return field.min + static_cast<int>(i);
    }
    fail_field(field, token, "values are " + std::string(field.values));
}

// Rejects wildcard characters the field's row in the table does not list, before items
// are parsed, so the error names the wildcard rather than a confusing value.
void check_wildcards(const FieldSpec& field, std::string_view text) {
    const auto refuse = [&] { fail_field(field, text, "wildcards allowed here are " + std::string(field.wildcards)); };
    for (char c : text) {
        if (std::string_view(",-*/?#").find(c) != std::string_view::npos &&
            field.wildcards.find(c) == std::string_view::npos)
            refuse();
        // L and W would otherwise surface as "values are 0-59" in fields without names.
        const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if ((u == 'L' || u == 'W') && field.names.empty() && field.wildcards.find(u) == std::string_view::npos)
            refuse();
    }
    if (text.find('?') != std::string_view::npos && text != "?") fail_field(field, text, "'?' must be the whole field");
}

// One list entry made of `*`, `v` or `a-b`, optionally followed by `/step`; calls
// add(value) for every value it selects.
template <class Add>
void parse_range_item(const FieldSpec& field, std::string_view item, Add add) {
    const auto parts = split(item, '/');
    if (parts.size() > 2) fail_field(field, item, "only one '/' per entry");
    const auto base = parts[0];
    int step = 1;
    if (parts.size() == 2) {
        const auto s = to_int(parts[1]);
        if (!s || *s <= 0) fail_field(field, item, "the step after '/' must be a positive integer");
        step = *s;
        if (base.empty()) fail_field(field, item, "'/' needs a start value or '*' before it");
    }
    int lo = 0;
    int hi = 0;
    if (base == "*") {
        lo = field.min;
        hi = field.max;
    } else if (const auto dash = base.find('-'); dash != std::string_view::npos) {
        const auto from = base.substr(0, dash);
        const auto to = base.substr(dash + 1);
        if (from.empty() || to.empty() || to.find('-') != std::string_view::npos)
            fail_field(field, item, "a range is two values joined by '-', as in 1-15");
        lo = parse_value(field, from);
        hi = parse_value(field, to);
        // The page describes ranges only as low-high; wrapping (e.g. 22-2) is not part of it.
        if (lo > hi) fail_field(field, item, "the range runs backwards; write the lower value first");
    } else {
        lo = parse_value(field, base);
        // Per the page, 1/10 in minutes is 1, 11, 21, ...: a start value with a step runs
        // to the end of the field.
        hi = parts.size() == 2 ? field.max : lo;
    }
    for (int v = lo; v <= hi; v += step) add(v);
}

// Plain fields (minutes, hours, month, year): a comma list of range items.
template <class Add>
void parse_plain_field(const FieldSpec& field, std::string_view text, Add add) {
    check_wildcards(field, text);
    for (const auto item : split(text, ',')) {
        if (item.empty()) fail_field(field, text, "empty entry in the list");
        parse_range_item(field, item, add);
    }
}

// The weekday closest to day n of the month, never leaving the month: the page's "3W".
unsigned nearest_weekday(year_month ym, unsigned n, unsigned last) {
    const weekday wd{sys_days{ym / day{n}}};
    if (wd == Saturday) return n == 1 ? n + 2 : n - 1;
    if (wd == Sunday) return n == last ? n - 2 : n + 1;
    return n;
}

std::uint32_t bit(unsigned n) { return std::uint32_t{1} << n; }
std::uint8_t weekday_bit(int weekday_number) { return static_cast<std::uint8_t>(1u << weekday_number); }

}  // namespace

ScheduleExpression ScheduleExpression::parse(std::string_view text) {
    ScheduleExpression expr;
    expr.text_ = std::string(text);

    const auto body_of = [&](std::string_view keyword) -> std::optional<std::string_view> {
        if (text.size() < keyword.size() + 2 || !text.starts_with(keyword) || text[keyword.size()] != '(' ||
            text.back() != ')')
            return std::nullopt;
        return text.substr(keyword.size() + 1, text.size() - keyword.size() - 2);
    };

    if (const auto body = body_of("rate")) {
        const auto parts = split_whitespace(*body);
        if (parts.size() != 2)
            throw ApiError::bad_parameter("expression: rate takes a value and a unit, as in rate(5 minutes)");
        const auto value = to_int(parts[0]);
        if (!all_digits(parts[0]) || (value && *value == 0))
            throw ApiError::bad_parameter("expression: rate value '" + std::string(parts[0]) +
                                          "': must be a positive integer");
        struct Unit {
            std::string_view name;
            seconds length;
            bool plural;
        };
        // The units EventBridge's "Rate expressions reference" page lists, plus seconds:
        // funcd's own extension (EventBridge's shortest rate is a minute), for sub-minute
        // jobs on one host.
        constexpr std::array<Unit, 8> kUnits = {{{"second", seconds{1}, false},
                                                 {"seconds", seconds{1}, true},
                                                 {"minute", minutes{1}, false},
                                                 {"minutes", minutes{1}, true},
                                                 {"hour", hours{1}, false},
                                                 {"hours", hours{1}, true},
                                                 {"day", days{1}, false},
                                                 {"days", days{1}, true}}};
        const Unit* unit = nullptr;
        for (const auto& u : kUnits)
            if (u.name == parts[1]) unit = &u;
        if (!unit)
            throw ApiError::bad_parameter("expression: rate unit '" + std::string(parts[1]) +
                                          "': units are second(s), minute(s), hour(s), day(s)");
        // The page: "If the value is equal to 1, then the unit must be singular. If the
        // value is greater than 1, the unit must be plural."
        if (value && *value == 1 && unit->plural)
            throw ApiError::bad_parameter("expression: rate unit '" + std::string(parts[1]) + "': use '" +
                                          std::string(unit->name.substr(0, unit->name.size() - 1)) +
                                          "' when the value is 1");
        if ((!value || *value > 1) && !unit->plural)
            throw ApiError::bad_parameter("expression: rate unit '" + std::string(parts[1]) + "': use '" +
                                          std::string(unit->name) + "s' when the value is greater than 1");
        if (!value || unit->length * *value > kMaxRatePeriod)
            throw ApiError::bad_parameter("expression: rate value '" + std::string(parts[0]) +
                                          "': the period must be at most " +
                                          std::to_string(kMaxRatePeriod.count()) + " days");
        expr.rate_period_ = unit->length * *value;
        return expr;
    }

    const auto body = body_of("cron");
    if (!body) throw ApiError::bad_parameter(std::string(kForms));
    const auto fields = split_whitespace(*body);
    if (fields.size() != 6)
        throw ApiError::bad_parameter("expression: cron needs 6 fields (minutes hours day-of-month month "
                                      "day-of-week year), got " +
                                      std::to_string(fields.size()));

    auto& c = expr.cron_;
    parse_plain_field(kMinutes, fields[0], [&](int v) { c.minutes |= std::uint64_t{1} << v; });
    parse_plain_field(kHours, fields[1], [&](int v) { c.hours |= bit(static_cast<unsigned>(v)); });

    const auto dom = fields[2];
    check_wildcards(kDayOfMonth, dom);
    if (dom != "?") {
        c.by_day_of_month = true;
        for (const auto item : split(dom, ',')) {
            if (item.empty()) fail_field(kDayOfMonth, dom, "empty entry in the list");
            const auto u = upper(item);
            if (u == "L") {
                c.last_day = true;
            } else if (u == "LW") {
                c.last_weekday = true;
            } else if (u.front() == 'L') {
                // The page defines L alone; an offset would reuse '-', which means a range.
                fail_field(kDayOfMonth, item, "L stands alone or as LW; offsets such as L-3 are not supported");
            } else if (u.back() == 'W') {
                const auto day_text = std::string_view(item).substr(0, item.size() - 1);
                if (!all_digits(day_text)) fail_field(kDayOfMonth, item, "W follows a single day, as in 15W");
                c.nearest_weekdays |= bit(static_cast<unsigned>(parse_value(kDayOfMonth, day_text)));
            } else if (u.find_first_of("LW") != std::string::npos) {
                fail_field(kDayOfMonth, item, "L and W are written L, LW or a day followed by W, as in 15W");
            } else {
                parse_range_item(kDayOfMonth, item, [&](int v) { c.days |= bit(static_cast<unsigned>(v)); });
            }
        }
    }

    parse_plain_field(kMonth, fields[3], [&](int v) { c.months |= static_cast<std::uint16_t>(1u << v); });

    const auto dow = fields[4];
    check_wildcards(kDayOfWeek, dow);
    const bool by_day_of_week = dow != "?";
    if (by_day_of_week && dow.find('#') != std::string_view::npos) {
        // The page: with '#' the field holds one expression; "3#1,6#3" is invalid.
        if (dow.find(',') != std::string_view::npos)
            fail_field(kDayOfWeek, dow, "'#' must be the only entry in the field");
        const auto parts = split(dow, '#');
        if (parts.size() != 2 || parts[0].find_first_of("-*") != std::string_view::npos)
            fail_field(kDayOfWeek, dow, "'#' joins one weekday and its occurrence, as in 3#2");
        c.nth_weekday = parse_value(kDayOfWeek, parts[0]);
        const auto n = to_int(parts[1]);
        // A weekday occurs at most five times in a month.
        if (!n || *n < 1 || *n > 5) fail_field(kDayOfWeek, dow, "the occurrence after '#' is 1-5");
        c.nth_occurrence = *n;
    } else if (by_day_of_week) {
        for (const auto item : split(dow, ',')) {
            if (item.empty()) fail_field(kDayOfWeek, dow, "empty entry in the list");
            const auto u = upper(item);
            if (u == "L") {
                // The page: L in day-of-week is the last day of the week, Saturday.
                c.weekdays |= weekday_bit(7);
            } else if (u.back() == 'L') {
                // nL, the last weekday n of the month (6L = last Friday), as in the
                // Quartz-style syntax EventBridge's fields come from.
                const auto wd_text = std::string_view(item).substr(0, item.size() - 1);
                if (wd_text.find_first_of("-*") != std::string_view::npos)
                    fail_field(kDayOfWeek, item, "L follows a single weekday, as in 6L");
                c.last_of_weekday |= weekday_bit(parse_value(kDayOfWeek, wd_text));
            } else if (u.find('L') != std::string::npos) {
                fail_field(kDayOfWeek, item, "L stands alone or follows a single weekday, as in 6L");
            } else {
                parse_range_item(kDayOfWeek, item, [&](int v) { c.weekdays |= weekday_bit(v); });
            }
        }
    }

    // The page: "You can't specify the Day-of-month and Day-of-week fields in the same cron
    // expression. If you specify a value or a * in one of the fields, you must use a ? in the other."
    if (c.by_day_of_month == by_day_of_week)
        throw ApiError::bad_parameter(
            "expression: cron day-of-month '" + std::string(dom) + "' and day-of-week '" + std::string(dow) +
            "': exactly one of them must be '?'");

    parse_plain_field(kYear, fields[5], [&](int v) { c.years.set(static_cast<std::size_t>(v - kFirstYear)); });
    return expr;
}

std::optional<ScheduleExpression::TimePoint> ScheduleExpression::next_after(TimePoint after,
                                                                           TimePoint anchor) const {
    if (!is_rate()) return next_cron_after(after);

    // Fires are anchor + k * period, k >= 1. Unsigned arithmetic on the clock's ticks keeps
    // the far-apart cases (anchor and `after` centuries apart) free of overflow.
    using Duration = TimePoint::duration;
    using Rep = Duration::rep;
    static_assert(std::is_signed_v<Rep> && sizeof(Rep) == sizeof(std::uint64_t));
    const auto period = static_cast<std::uint64_t>(duration_cast<Duration>(rate_period_).count());
    const auto a = anchor.time_since_epoch().count();
    const auto t = after.time_since_epoch().count();
    std::uint64_t k = 1;
    if (t >= a) k = (static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(a)) / period + 1;
    if (k > std::numeric_limits<std::uint64_t>::max() / period) return std::nullopt;
    const auto offset = k * period;
    const auto room = static_cast<std::uint64_t>(std::numeric_limits<Rep>::max()) - static_cast<std::uint64_t>(a);
    if (offset > room) return std::nullopt;
    return TimePoint(Duration(static_cast<Rep>(static_cast<std::uint64_t>(a) + offset)));
}

std::uint32_t ScheduleExpression::matching_days(year_month ym) const {
    const auto& c = cron_;
    const unsigned last_dom = static_cast<unsigned>((ym / last).day());
    const std::uint32_t in_month = static_cast<std::uint32_t>((std::uint64_t{1} << (last_dom + 1)) - 2);

    if (c.by_day_of_month) {
        std::uint32_t out = c.days & in_month;
        if (c.last_day) out |= bit(last_dom);
        if (c.last_weekday) out |= bit(nearest_weekday(ym, last_dom, last_dom));
        // A W day the month does not have (31W in April) selects nothing, as plain 31 does.
        for (auto w = c.nearest_weekdays & in_month; w != 0; w &= w - 1)
            out |= bit(nearest_weekday(ym, static_cast<unsigned>(std::countr_zero(w)), last_dom));
        return out;
    }

    std::uint32_t out = 0;
    const unsigned first_wd = weekday{sys_days{ym / 1}}.c_encoding();  // 0 = Sunday
    for (unsigned d = 1; d <= last_dom; ++d)
        if (c.weekdays & bit((first_wd + d - 1) % 7 + 1)) out |= bit(d);
    for (unsigned w = 1; w <= 7; ++w) {
        if (!(c.last_of_weekday & bit(w))) continue;
        const year_month_weekday_last lastw{ym.year(), ym.month(), weekday{w - 1}[last]};
        out |= bit(static_cast<unsigned>(year_month_day{lastw}.day()));
    }
    if (c.nth_occurrence != 0) {
        const year_month_weekday nth{ym.year(), ym.month(),
                                     weekday{static_cast<unsigned>(c.nth_weekday - 1)}[static_cast<unsigned>(
                                         c.nth_occurrence)]};
        if (nth.ok()) out |= bit(static_cast<unsigned>(year_month_day{nth}.day()));
    }
    return out;
}

std::optional<ScheduleExpression::TimePoint> ScheduleExpression::next_cron_after(TimePoint after) const {
    constexpr sys_days kFirst{year{kFirstYear} / January / 1};
    constexpr sys_days kEnd{year{kLastYear + 1} / January / 1};
    if (after >= kEnd) return std::nullopt;
    // Strictly after: the next whole minute, or the first minute EventBridge can express.
    const sys_time<minutes> start = after < kFirst ? sys_time<minutes>{kFirst} : floor<minutes>(after) + minutes{1};

    const auto start_day = floor<days>(start);
    const year_month_day s{start_day};
    const auto start_hour = static_cast<unsigned>(duration_cast<hours>(start - start_day).count());
    const auto start_minute = static_cast<unsigned>((start - start_day - hours{start_hour}).count());

    const auto& c = cron_;
    // Walk years, then months, then the month's matching days: at most 230 * 12 months,
    // each one bit mask, so even a cron that never fires answers quickly.
    for (int y = static_cast<int>(s.year()); y <= kLastYear; ++y) {
        if (!c.years.test(static_cast<std::size_t>(y - kFirstYear))) continue;
        const bool in_start_year = y == static_cast<int>(s.year());
        for (unsigned m = in_start_year ? static_cast<unsigned>(s.month()) : 1; m <= 12; ++m) {
            if (!(c.months & (1u << m))) continue;
            const year_month ym{year{y}, month{m}};
            const bool in_start_month = in_start_year && m == static_cast<unsigned>(s.month());
            const unsigned first_day = in_start_month ? static_cast<unsigned>(s.day()) : 1;
            for (auto ds = matching_days(ym) & ~(bit(first_day) - 1); ds != 0; ds &= ds - 1) {
                const auto d = static_cast<unsigned>(std::countr_zero(ds));
                const bool on_start_day = in_start_month && d == first_day;
                const unsigned first_hour = on_start_day ? start_hour : 0;
                for (auto hs = c.hours & ~(bit(first_hour) - 1); hs != 0; hs &= hs - 1) {
                    const auto h = static_cast<unsigned>(std::countr_zero(hs));
                    const unsigned first_minute = on_start_day && h == start_hour ? start_minute : 0;
                    const auto ms = c.minutes & ~((std::uint64_t{1} << first_minute) - 1);
                    if (ms == 0) continue;
                    return sys_days{ym / day{d}} + hours{h} + minutes{std::countr_zero(ms)};
                }
            }
        }
    }
    return std::nullopt;
}

}  // namespace funcd
