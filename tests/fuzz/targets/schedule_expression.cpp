// Schedule expressions (funcd::ScheduleExpression): rate() and EventBridge's cron().
//
// Input: the expression (UTF-8, as it arrives in a JSON body), optionally followed by a line
// "AFTER ANCHOR" of two Unix times in seconds (otherwise fixed ones).
//
// Invariants:
// - a bad expression is refused with ApiError 400 and a message;
// - the next fire time is strictly after `after`; for rate() it is anchor + k * period with
//   k >= 1 and no fire time is skipped; for cron() it falls on a whole minute within
//   EventBridge's years, and asking again from any instant between `after` and it finds it
//   again (none was skipped);
// - a cron that has a fire time keeps having them: asking from the fire time finds a later one
//   or none.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "../fuzz_check.hpp"
#include "../refusal_check.hpp"
#include "funcd/common/api_error.hpp"
#include "funcd/triggers/schedule_expression.hpp"

namespace {

using namespace std::chrono;
using funcd::ScheduleExpression;
using TimePoint = ScheduleExpression::TimePoint;

// system_clock counts nanoseconds in 64 bits: about +-292 years around 1970. Times from the
// input are kept inside +-280 years.
constexpr std::int64_t kMaxSeconds = 280LL * 365 * 24 * 3600;
constexpr std::int64_t kDefaultAfter = 1'767'225'600;  // 2026-01-01T00:00:00Z
constexpr std::int64_t kDefaultAnchor = 1'767'225'000;

std::optional<std::int64_t> number(std::string_view& text) {
    while (text.starts_with(' ')) text.remove_prefix(1);
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc()) return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    return v % kMaxSeconds;
}

TimePoint at(std::int64_t seconds_since_epoch) { return TimePoint(duration_cast<TimePoint::duration>(seconds(seconds_since_epoch))); }

std::string show(TimePoint t) { return std::to_string(duration_cast<nanoseconds>(t.time_since_epoch()).count()) + " ns"; }

void check_rate(const ScheduleExpression& e, TimePoint after, TimePoint anchor, TimePoint next) {
    const auto period = duration_cast<TimePoint::duration>(e.rate_period());
    FUZZ_CHECK(period.count() > 0, "a rate without a period");
    FUZZ_CHECK(next > anchor, "fires at " + show(next) + ", not after its anchor " + show(anchor));
    // In unsigned ticks: anchor and next may be further apart than the signed type holds.
    const auto span = static_cast<std::uint64_t>(next.time_since_epoch().count()) -
                      static_cast<std::uint64_t>(anchor.time_since_epoch().count());
    FUZZ_CHECK(span % static_cast<std::uint64_t>(period.count()) == 0, "fires off the anchor's phase");
    // The previous fire time (or the anchor) is not after `after`, unless `after` is before the anchor.
    FUZZ_CHECK(next - period <= std::max(after, anchor), "a fire time was skipped before " + show(next));
}

void check_cron(const ScheduleExpression& e, TimePoint after, TimePoint anchor, TimePoint next) {
    FUZZ_CHECK(next.time_since_epoch() % minutes(1) == TimePoint::duration::zero(), "fires off a whole minute");
    const auto year = static_cast<int>(year_month_day(floor<days>(next)).year());
    FUZZ_CHECK(year >= ScheduleExpression::kFirstYear && year <= ScheduleExpression::kLastYear,
               "fires in year " + std::to_string(year));
    // Nothing fires between `after` and `next`: from any instant in between the answer is the same.
    // (The midpoint is computed without next - after, which overflows for centuries apart.)
    const TimePoint middle(after.time_since_epoch() / 2 + next.time_since_epoch() / 2);
    for (const auto probe : {middle, next - nanoseconds(1), next - minutes(1) + seconds(1)}) {
        if (probe < after || probe >= next) continue;
        const auto again = e.next_after(probe, anchor);
        FUZZ_CHECK(again && *again == next,
                   "from " + show(probe) + ": " + (again ? show(*again) : std::string("none")) + " instead of " +
                       show(next));
    }
    const auto later = e.next_after(next, anchor);
    if (later) FUZZ_CHECK(*later > next, "the fire time after " + show(next) + " is " + show(*later));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string_view times;
    if (const auto nl = input.find('\n'); nl != std::string_view::npos) {
        times = input.substr(nl + 1);
        input = input.substr(0, nl);
    }
    // Expressions arrive as JSON strings, which are UTF-8.
    if (!funcd::is_valid_utf8(input)) return 0;
    const TimePoint after = at(number(times).value_or(kDefaultAfter));
    const TimePoint anchor = at(number(times).value_or(kDefaultAnchor));

    std::optional<ScheduleExpression> expr;
    try {
        expr = ScheduleExpression::parse(input);
    } catch (const funcd::ApiError& e) {
        funcd::fuzz::check_refusal(e, input, {400});
        return 0;
    }
    FUZZ_CHECK(expr->text() == input, "the expression's text changed");
    const auto next = expr->next_after(after, anchor);
    if (!next) {
        // Only a cron whose years have all passed, or a rate past the clock's range, has none.
        if (expr->is_rate()) FUZZ_CHECK(anchor > after || after > at(kMaxSeconds / 2), "a rate stopped firing");
        return 0;
    }
    FUZZ_CHECK(*next > after, "fires at " + show(*next) + ", not after " + show(after));
    if (expr->is_rate()) check_rate(*expr, after, anchor, *next);
    else check_cron(*expr, after, anchor, *next);
    return 0;
}
