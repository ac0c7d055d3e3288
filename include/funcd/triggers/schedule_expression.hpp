#pragma once
// Schedule expressions in Amazon EventBridge's syntax, so schedules written for
// EventBridge rules carry over unchanged:
//   rate(value unit)   unit: minute | minutes | hour | hours | day | days, and funcd's
//                      own second | seconds

//   cron(minutes hours day-of-month month day-of-week year)
// Evaluated in UTC; cron fires on whole minutes.
// Reference: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html
// and https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html
#include <bitset>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace funcd {

class ScheduleExpression {
public:
    using TimePoint = std::chrono::system_clock::time_point;

    // EventBridge's year range; it also bounds every cron search.
    static constexpr int kFirstYear = 1970;
    static constexpr int kLastYear = 2199;

    // Throws ApiError::bad_parameter with a message naming the bad part, e.g.
    // "expression: cron day-of-week field '9': values are 1-7 or SUN-SAT".
    static ScheduleExpression parse(std::string_view text);

    // The first fire time strictly after `after`. rate() fires at anchor + k * period for
    // k >= 1, where the anchor is the schedule's creation time, so a restarted daemon keeps
    // the phase and a new schedule does not fire the instant it is created. cron() fires on
    // whole UTC minutes. nullopt when there is none (a cron whose years are all past).
    std::optional<TimePoint> next_after(TimePoint after, TimePoint anchor) const;

    const std::string& text() const { return text_; }
    bool is_rate() const { return rate_period_.count() > 0; }
    std::chrono::seconds rate_period() const { return rate_period_; }  // zero for cron()

private:
    // One bit per allowed value, indexed by the value itself.
    struct Cron {
        std::uint64_t minutes = 0;  // bits 0-59
        std::uint32_t hours = 0;    // bits 0-23
        std::uint16_t months = 0;   // bits 1-12
        std::bitset<kLastYear - kFirstYear + 1> years;  // bit 0 = kFirstYear

        // Exactly one of the two day fields is in use; the other was '?'.
        bool by_day_of_month = false;
        std::uint32_t days = 0;              // day-of-month bits 1-31
        std::uint32_t nearest_weekdays = 0;  // nW: bits 1-31
        bool last_day = false;               // L
        bool last_weekday = false;           // LW

        std::uint8_t weekdays = 0;       // day-of-week bits 1-7, 1 = Sunday
        std::uint8_t last_of_weekday = 0;  // nL: bits 1-7
        int nth_weekday = 0;             // n#k: weekday n (1-7) ...
        int nth_occurrence = 0;          // ... its k-th (1-5) occurrence; 0 when unused
    };

    ScheduleExpression() = default;
    // Bits 1..last-day-of-month of the days in year/month the day fields select.
    std::uint32_t matching_days(std::chrono::year_month ym) const;
    std::optional<TimePoint> next_cron_after(TimePoint after) const;

    std::string text_;
    std::chrono::seconds rate_period_{0};
    Cron cron_;
};

}  // namespace funcd
