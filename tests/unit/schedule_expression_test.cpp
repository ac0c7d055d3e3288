#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "funcd/common/api_error.hpp"
#include "funcd/common/time_format.hpp"
#include "funcd/triggers/schedule_expression.hpp"

using namespace funcd;
using namespace std::chrono;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

constexpr std::string_view kAnyAnchor = "2000-01-01T00:00:00Z";  // cron ignores the anchor

SystemTime moment(std::string_view rfc3339) {
    const auto t = parse_rfc3339(rfc3339);
    EXPECT_TRUE(t.has_value()) << rfc3339;
    return t.value_or(SystemTime{});
}

// The next fire as RFC 3339 ("none" when there is none), so expectations read as dates.
std::string next(std::string_view expr, std::string_view after, std::string_view anchor = kAnyAnchor) {
    const auto fire = ScheduleExpression::parse(expr).next_after(moment(after), moment(anchor));
    return fire ? format_rfc3339(*fire) : "none";
}

// `count` consecutive fires after `after`.
std::vector<std::string> fires(std::string_view expr, std::string_view after, int count,
                               std::string_view anchor = kAnyAnchor) {
    const auto e = ScheduleExpression::parse(expr);
    std::vector<std::string> out;
    auto t = moment(after);
    for (int i = 0; i < count; ++i) {
        const auto fire = e.next_after(t, moment(anchor));
        if (!fire) break;
        out.push_back(format_rfc3339(*fire));
        t = *fire;
    }
    return out;
}

std::string error_of(std::string_view expr) {
    try {
        ScheduleExpression::parse(expr);
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400);
        EXPECT_EQ(e.type(), "InvalidParameterValueException");
        return e.what();
    }
    return "(accepted)";
}

}  // namespace

// ---------------------------------------------------------------- rate()

TEST(ScheduleRate, ParsesEveryUnit) {
    const struct {
        const char* text;
        seconds period;
    } cases[] = {{"rate(1 second)", seconds{1}}, {"rate(30 seconds)", seconds{30}},
                 {"rate(1 minute)", minutes{1}}, {"rate(5 minutes)", minutes{5}}, {"rate(1 hour)", hours{1}},
                 {"rate(12 hours)", hours{12}},  {"rate(1 day)", days{1}},        {"rate(7 days)", days{7}}};
    for (const auto& c : cases) {
        const auto e = ScheduleExpression::parse(c.text);
        EXPECT_TRUE(e.is_rate()) << c.text;
        EXPECT_EQ(e.rate_period(), c.period) << c.text;
        EXPECT_EQ(e.text(), c.text);
    }
    EXPECT_EQ(ScheduleExpression::parse("rate(05 minutes)").rate_period(), minutes{5});
    EXPECT_EQ(ScheduleExpression::parse("rate(36500 days)").rate_period(), days{36500});
}

TEST(ScheduleRate, FiresAtAnchorPlusWholePeriods) {
    const auto anchor = "2024-03-10T10:02:30Z";
    EXPECT_EQ(next("rate(5 minutes)", "2024-03-10T10:02:30Z", anchor), "2024-03-10T10:07:30.000Z");
    EXPECT_EQ(next("rate(5 minutes)", "2024-03-10T10:07:29Z", anchor), "2024-03-10T10:07:30.000Z");
    EXPECT_EQ(next("rate(5 minutes)", "2024-03-10T10:07:30Z", anchor), "2024-03-10T10:12:30.000Z");
    EXPECT_THAT(fires("rate(1 hour)", anchor, 3, anchor),
                ElementsAre("2024-03-10T11:02:30.000Z", "2024-03-10T12:02:30.000Z", "2024-03-10T13:02:30.000Z"));
}

TEST(ScheduleRate, RestartKeepsThePhaseOfTheAnchor) {
    // A daemon restarted days later still fires on the anchor's 7-minute grid.
    const auto anchor = "2024-03-10T10:02:30Z";
    EXPECT_EQ(next("rate(7 minutes)", "2024-03-13T08:00:00Z", anchor), "2024-03-13T08:02:30.000Z");
    EXPECT_EQ(next("rate(3 days)", "2024-04-01T00:00:00Z", anchor), "2024-04-03T10:02:30.000Z");
}

TEST(ScheduleRate, KeepsSubSecondAnchor) {
    EXPECT_EQ(next("rate(1 minute)", "2024-03-10T10:00:00Z", "2024-03-10T09:00:00.250Z"),
              "2024-03-10T10:00:00.250Z");
}

TEST(ScheduleRate, FirstFireIsOnePeriodAfterCreation) {
    // Asked about a time before the anchor: the schedule starts at creation and first
    // fires one period later, never at the creation instant itself.
    const auto anchor = "2024-03-10T10:00:00Z";
    EXPECT_EQ(next("rate(1 day)", "2024-03-01T00:00:00Z", anchor), "2024-03-11T10:00:00.000Z");
    EXPECT_EQ(next("rate(1 day)", "2024-03-10T09:59:59Z", anchor), "2024-03-11T10:00:00.000Z");
}

TEST(ScheduleRate, FarApartTimesDoNotOverflow) {
    const auto e = ScheduleExpression::parse("rate(36500 days)");
    const auto anchor = moment("1970-01-01T00:00:00Z");
    EXPECT_EQ(format_rfc3339(*e.next_after(moment("2100-01-01T00:00:00Z"), anchor)), "2169-11-13T00:00:00.000Z");
    EXPECT_FALSE(e.next_after(SystemTime::max(), anchor).has_value());
    EXPECT_EQ(format_rfc3339(*ScheduleExpression::parse("rate(1 minute)").next_after(SystemTime::min(), anchor)),
              "1970-01-01T00:01:00.000Z");
}

TEST(ScheduleRate, UnitMustBeSingularForOneAndPluralOtherwise) {
    // EventBridge's rate reference: rate(1 hours) and rate(5 hour) are invalid.
    EXPECT_EQ(error_of("rate(1 minutes)"), "expression: rate unit 'minutes': use 'minute' when the value is 1");
    EXPECT_EQ(error_of("rate(1 hours)"), "expression: rate unit 'hours': use 'hour' when the value is 1");
    EXPECT_EQ(error_of("rate(1 days)"), "expression: rate unit 'days': use 'day' when the value is 1");
    EXPECT_EQ(error_of("rate(5 minute)"),
              "expression: rate unit 'minute': use 'minutes' when the value is greater than 1");
    EXPECT_EQ(error_of("rate(2 hour)"), "expression: rate unit 'hour': use 'hours' when the value is greater than 1");
    EXPECT_EQ(error_of("rate(2 day)"), "expression: rate unit 'day': use 'days' when the value is greater than 1");
}

TEST(ScheduleRate, RejectsBadValuesAndUnits) {
    EXPECT_EQ(error_of("rate(0 minutes)"), "expression: rate value '0': must be a positive integer");
    EXPECT_EQ(error_of("rate(-5 minutes)"), "expression: rate value '-5': must be a positive integer");
    EXPECT_EQ(error_of("rate(1.5 hours)"), "expression: rate value '1.5': must be a positive integer");
    EXPECT_EQ(error_of("rate(five minutes)"), "expression: rate value 'five': must be a positive integer");
    EXPECT_EQ(error_of("rate(5 weeks)"),
              "expression: rate unit 'weeks': units are second(s), minute(s), hour(s), day(s)");
    EXPECT_EQ(error_of("rate(5 Minutes)"),
              "expression: rate unit 'Minutes': units are second(s), minute(s), hour(s), day(s)");
    EXPECT_EQ(error_of("rate(5)"), "expression: rate takes a value and a unit, as in rate(5 minutes)");
    EXPECT_EQ(error_of("rate()"), "expression: rate takes a value and a unit, as in rate(5 minutes)");
    EXPECT_EQ(error_of("rate(5 minutes now)"), "expression: rate takes a value and a unit, as in rate(5 minutes)");
    EXPECT_EQ(error_of("rate(36501 days)"), "expression: rate value '36501': the period must be at most 36500 days");
    EXPECT_EQ(error_of("rate(99999999999 minutes)"),
              "expression: rate value '99999999999': the period must be at most 36500 days");
}

// ---------------------------------------------------------------- cron(): times of day

TEST(ScheduleCron, AccessorsAndAnchorIgnored) {
    const auto e = ScheduleExpression::parse("cron(0 12 * * ? *)");
    EXPECT_FALSE(e.is_rate());
    EXPECT_EQ(e.rate_period(), seconds{0});
    EXPECT_EQ(e.text(), "cron(0 12 * * ? *)");
    EXPECT_EQ(next("cron(0 12 * * ? *)", "2024-03-10T08:00:00Z", "2024-03-10T07:13:00Z"),
              next("cron(0 12 * * ? *)", "2024-03-10T08:00:00Z", "1999-01-01T00:00:00Z"));
}

TEST(ScheduleCron, FiresStrictlyAfterOnWholeMinutes) {
    EXPECT_EQ(next("cron(0 12 * * ? *)", "2024-03-10T11:59:59.999Z"), "2024-03-10T12:00:00.000Z");
    EXPECT_EQ(next("cron(0 12 * * ? *)", "2024-03-10T12:00:00Z"), "2024-03-11T12:00:00.000Z");
    EXPECT_EQ(next("cron(0 12 * * ? *)", "2024-03-10T12:00:00.001Z"), "2024-03-11T12:00:00.000Z");
    EXPECT_EQ(next("cron(* * * * ? *)", "2024-03-10T10:00:30Z"), "2024-03-10T10:01:00.000Z");
    EXPECT_EQ(next("cron(* * * * ? *)", "2024-12-31T23:59:00Z"), "2025-01-01T00:00:00.000Z");
}

TEST(ScheduleCron, MinuteStepsRangesAndLists) {
    EXPECT_THAT(fires("cron(0/15 * * * ? *)", "2024-03-10T10:16:00Z", 4),
                ElementsAre("2024-03-10T10:30:00.000Z", "2024-03-10T10:45:00.000Z", "2024-03-10T11:00:00.000Z",
                            "2024-03-10T11:15:00.000Z"));
    // The page's example: 1/10 is the 1st, 11th, 21st, ... minute.
    EXPECT_THAT(fires("cron(1/10 * * * ? *)", "2024-03-10T10:45:00Z", 3),
                ElementsAre("2024-03-10T10:51:00.000Z", "2024-03-10T11:01:00.000Z", "2024-03-10T11:11:00.000Z"));
    EXPECT_THAT(fires("cron(*/20 * * * ? *)", "2024-03-10T10:00:00Z", 3),
                ElementsAre("2024-03-10T10:20:00.000Z", "2024-03-10T10:40:00.000Z", "2024-03-10T11:00:00.000Z"));
    EXPECT_THAT(fires("cron(10-50/20 * * * ? *)", "2024-03-10T10:30:00Z", 3),
                ElementsAre("2024-03-10T10:50:00.000Z", "2024-03-10T11:10:00.000Z", "2024-03-10T11:30:00.000Z"));
    EXPECT_THAT(fires("cron(58-59 * * * ? *)", "2024-03-10T10:58:00Z", 2),
                ElementsAre("2024-03-10T10:59:00.000Z", "2024-03-10T11:58:00.000Z"));
    EXPECT_THAT(fires("cron(5,20,40 * * * ? *)", "2024-03-10T10:20:00Z", 3),
                ElementsAre("2024-03-10T10:40:00.000Z", "2024-03-10T11:05:00.000Z", "2024-03-10T11:20:00.000Z"));
    // A step longer than the field leaves only the start.
    EXPECT_THAT(fires("cron(7/90 * * * ? *)", "2024-03-10T10:07:00Z", 1), ElementsAre("2024-03-10T11:07:00.000Z"));
}

TEST(ScheduleCron, HourStepsRangesAndLists) {
    EXPECT_THAT(fires("cron(30 0/6 * * ? *)", "2024-03-10T12:30:00Z", 3),
                ElementsAre("2024-03-10T18:30:00.000Z", "2024-03-11T00:30:00.000Z", "2024-03-11T06:30:00.000Z"));
    EXPECT_THAT(fires("cron(0 10,15 * * ? *)", "2024-03-10T10:00:00Z", 3),
                ElementsAre("2024-03-10T15:00:00.000Z", "2024-03-11T10:00:00.000Z", "2024-03-11T15:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 22-23 * * ? *)", "2024-12-31T22:30:00Z", 2),
                ElementsAre("2024-12-31T23:00:00.000Z", "2025-01-01T22:00:00.000Z"));
    EXPECT_EQ(next("cron(15 */8 * * ? *)", "2024-03-10T16:15:00Z"), "2024-03-11T00:15:00.000Z");
}

// ---------------------------------------------------------------- cron(): dates

TEST(ScheduleCron, DayOfMonthSkipsMonthsWithoutThatDay) {
    EXPECT_THAT(fires("cron(0 0 31 * ? *)", "2024-01-31T00:00:00Z", 3),
                ElementsAre("2024-03-31T00:00:00.000Z", "2024-05-31T00:00:00.000Z", "2024-07-31T00:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 8 1,15 * ? *)", "2024-03-01T08:00:00Z", 3),
                ElementsAre("2024-03-15T08:00:00.000Z", "2024-04-01T08:00:00.000Z", "2024-04-15T08:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 0 10-12 * ? *)", "2024-03-11T00:00:00Z", 2),
                ElementsAre("2024-03-12T00:00:00.000Z", "2024-04-10T00:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 0 1/10 * ? *)", "2024-02-21T00:00:00Z", 3),
                ElementsAre("2024-03-01T00:00:00.000Z", "2024-03-11T00:00:00.000Z", "2024-03-21T00:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 0 25/5 * ? *)", "2024-02-01T00:00:00Z", 3),
                ElementsAre("2024-02-25T00:00:00.000Z", "2024-03-25T00:00:00.000Z", "2024-03-30T00:00:00.000Z"));
}

TEST(ScheduleCron, LeapDayIsFoundFromAnyYear) {
    EXPECT_EQ(next("cron(0 0 29 2 ? *)", "2023-03-01T00:00:00Z"), "2024-02-29T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 29 2 ? *)", "2024-02-29T00:00:00Z"), "2028-02-29T00:00:00.000Z");
    // 2100 is not a leap year (divisible by 100, not by 400).
    EXPECT_EQ(next("cron(0 0 29 2 ? *)", "2097-01-01T00:00:00Z"), "2104-02-29T00:00:00.000Z");
}

TEST(ScheduleCron, ImpossibleDatesReturnNone) {
    EXPECT_EQ(next("cron(0 0 30 2 ? *)", "2024-01-01T00:00:00Z"), "none");
    EXPECT_EQ(next("cron(0 0 31 4,6,9,11 ? *)", "1970-01-01T00:00:00Z"), "none");
    EXPECT_EQ(next("cron(0 0 29 2 ? 2100)", "2024-01-01T00:00:00Z"), "none");
}

TEST(ScheduleCron, MonthNumbersNamesStepsAndRanges) {
    EXPECT_THAT(fires("cron(0 0 1 JAN,JUL ? *)", "2024-01-01T00:00:00Z", 2),
                ElementsAre("2024-07-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 0 1 */3 ? *)", "2024-04-01T00:00:00Z", 3),
                ElementsAre("2024-07-01T00:00:00.000Z", "2024-10-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 0 1 2/5 ? *)", "2024-01-01T00:00:00Z", 3),
                ElementsAre("2024-02-01T00:00:00.000Z", "2024-07-01T00:00:00.000Z", "2024-12-01T00:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 0 1 JUN-AUG ? *)", "2024-06-01T00:00:00Z", 3),
                ElementsAre("2024-07-01T00:00:00.000Z", "2024-08-01T00:00:00.000Z", "2025-06-01T00:00:00.000Z"));
}

TEST(ScheduleCron, NamesAreCaseInsensitive) {
    const auto expected = next("cron(0 9 1 JAN ? *)", "2024-03-01T00:00:00Z");
    EXPECT_EQ(expected, "2025-01-01T09:00:00.000Z");
    EXPECT_EQ(next("cron(0 9 1 jan ? *)", "2024-03-01T00:00:00Z"), expected);
    EXPECT_EQ(next("cron(0 9 1 Jan ? *)", "2024-03-01T00:00:00Z"), expected);
    const auto weekdays = next("cron(0 9 ? * MON-FRI *)", "2024-03-08T09:00:00Z");  // a Friday
    EXPECT_EQ(weekdays, "2024-03-11T09:00:00.000Z");
    EXPECT_EQ(next("cron(0 9 ? * mon-fri *)", "2024-03-08T09:00:00Z"), weekdays);
    EXPECT_EQ(next("cron(0 9 ? * Mon-Fri *)", "2024-03-08T09:00:00Z"), weekdays);
    EXPECT_EQ(next("cron(0 0 l * ? *)", "2024-02-01T00:00:00Z"), "2024-02-29T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 lw * ? *)", "2024-03-01T00:00:00Z"), "2024-03-29T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 15w * ? *)", "2024-06-01T00:00:00Z"), "2024-06-14T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 ? * 6l *)", "2024-03-01T00:00:00Z"), "2024-03-29T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 ? * tue#2 *)", "2024-03-01T00:00:00Z"), "2024-03-12T00:00:00.000Z");
}

TEST(ScheduleCron, YearField) {
    EXPECT_EQ(next("cron(0 0 1 1 ? 2030)", "2024-06-01T00:00:00Z"), "2030-01-01T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 1 1 ? 2030)", "2030-01-01T00:00:00Z"), "none");
    EXPECT_THAT(fires("cron(0 0 1 1 ? 2025-2031/3)", "2024-01-01T00:00:00Z", 4),
                ElementsAre("2025-01-01T00:00:00.000Z", "2028-01-01T00:00:00.000Z", "2031-01-01T00:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 0 1 1 ? 2026,2024)", "2023-01-01T00:00:00Z", 3),
                ElementsAre("2024-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 0 1 1 ? */100)", "1970-01-01T00:00:00Z", 3),
                ElementsAre("2070-01-01T00:00:00.000Z", "2170-01-01T00:00:00.000Z"));
}

TEST(ScheduleCron, YearsAllPastOrOutOfRangeReturnNone) {
    EXPECT_EQ(next("cron(0 0 * * ? 1999)", "2024-01-01T00:00:00Z"), "none");
    EXPECT_EQ(next("cron(0 0 * * ? 1970-2023)", "2024-01-01T00:00:00Z"), "none");
    EXPECT_EQ(next("cron(59 23 31 12 ? *)", "2199-12-31T23:58:00Z"), "2199-12-31T23:59:00.000Z");
    EXPECT_EQ(next("cron(* * * * ? *)", "2199-12-31T23:59:00Z"), "none");
    EXPECT_EQ(next("cron(* * * * ? *)", "2250-06-01T00:00:00Z"), "none");
    const auto e = ScheduleExpression::parse("cron(* * * * ? *)");
    EXPECT_FALSE(e.next_after(SystemTime::max(), SystemTime{}).has_value());
}

TEST(ScheduleCron, TimesBefore1970StartAtTheFirstExpressibleMinute) {
    EXPECT_EQ(next("cron(* * * * ? *)", "1960-05-05T05:05:00Z"), "1970-01-01T00:00:00.000Z");
    const auto e = ScheduleExpression::parse("cron(0 12 ? * MON *)");
    EXPECT_EQ(format_rfc3339(*e.next_after(SystemTime::min(), SystemTime{})), "1970-01-05T12:00:00.000Z");
}

// ---------------------------------------------------------------- cron(): L, W, #

TEST(ScheduleCron, LastDayOfMonthAcrossMonthLengthsAndLeapYears) {
    EXPECT_THAT(fires("cron(0 0 L * ? *)", "2024-01-31T00:00:00Z", 4),
                ElementsAre("2024-02-29T00:00:00.000Z", "2024-03-31T00:00:00.000Z", "2024-04-30T00:00:00.000Z",
                            "2024-05-31T00:00:00.000Z"));
    EXPECT_EQ(next("cron(0 0 L 2 ? *)", "2023-01-01T00:00:00Z"), "2023-02-28T00:00:00.000Z");
    EXPECT_EQ(next("cron(30 23 L 12 ? *)", "2024-12-31T23:30:00Z"), "2025-12-31T23:30:00.000Z");
    // L in a list with plain days.
    EXPECT_THAT(fires("cron(0 0 1,L * ? *)", "2024-02-01T00:00:00Z", 2),
                ElementsAre("2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z"));
}

TEST(ScheduleCron, LastWeekdayOfMonth) {
    // June 2024 ends on a Sunday, August 2024 on a Saturday, May 2024 on a Friday.
    EXPECT_EQ(next("cron(0 0 LW * ? *)", "2024-06-01T00:00:00Z"), "2024-06-28T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 LW * ? *)", "2024-08-01T00:00:00Z"), "2024-08-30T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 LW * ? *)", "2024-05-01T00:00:00Z"), "2024-05-31T00:00:00.000Z");
}

TEST(ScheduleCron, NearestWeekdayStaysInsideTheMonth) {
    // 15 June 2024 is a Saturday: Friday the 14th. 15 September 2024 is a Sunday: Monday
    // the 16th. 15 March 2024 is a Friday: itself.
    EXPECT_EQ(next("cron(0 0 15W * ? *)", "2024-06-01T00:00:00Z"), "2024-06-14T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 15W * ? *)", "2024-09-01T00:00:00Z"), "2024-09-16T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 15W * ? *)", "2024-03-01T00:00:00Z"), "2024-03-15T00:00:00.000Z");
    // 1 June 2024 is a Saturday: Monday the 3rd, not Friday 31 May.
    EXPECT_EQ(next("cron(0 0 1W * ? *)", "2024-05-31T00:00:00Z"), "2024-06-03T00:00:00.000Z");
    // 1 September 2024 is a Sunday: Monday the 2nd.
    EXPECT_EQ(next("cron(0 0 1W * ? *)", "2024-08-31T00:00:00Z"), "2024-09-02T00:00:00.000Z");
    // 31 March 2024 is a Sunday: Friday the 29th, not Monday 1 April; April has no 31st.
    EXPECT_THAT(fires("cron(0 0 31W * ? *)", "2024-03-01T00:00:00Z", 2),
                ElementsAre("2024-03-29T00:00:00.000Z", "2024-05-31T00:00:00.000Z"));
    // 30 June 2024 is a Sunday and the month's last day: Friday the 28th.
    EXPECT_EQ(next("cron(0 0 30W 6 ? *)", "2024-01-01T00:00:00Z"), "2024-06-28T00:00:00.000Z");
}

TEST(ScheduleCron, NearestWeekdayAlreadyPassedMovesToNextMonth) {
    // 15W in June 2024 fell on the 14th, before the search starts on the 14th at noon.
    EXPECT_EQ(next("cron(0 0 15W * ? *)", "2024-06-14T12:00:00Z"), "2024-07-15T00:00:00.000Z");
    // 15W in September 2024 moves forward to the 16th, after a start on the 15th.
    EXPECT_EQ(next("cron(0 0 15W * ? *)", "2024-09-15T23:00:00Z"), "2024-09-16T00:00:00.000Z");
}

TEST(ScheduleCron, DayOfWeekNumbersAndNames) {
    // 10 March 2024 is a Sunday; 1 = SUN ... 7 = SAT.
    EXPECT_EQ(next("cron(0 10 ? * 1 *)", "2024-03-10T10:00:00Z"), "2024-03-17T10:00:00.000Z");
    EXPECT_EQ(next("cron(0 10 ? * 2 *)", "2024-03-10T10:00:00Z"), "2024-03-11T10:00:00.000Z");
    EXPECT_EQ(next("cron(0 10 ? * MON *)", "2024-03-10T10:00:00Z"), "2024-03-11T10:00:00.000Z");
    EXPECT_EQ(next("cron(0 10 ? * 7 *)", "2024-03-10T10:00:00Z"), "2024-03-16T10:00:00.000Z");
    EXPECT_EQ(next("cron(0 10 ? * SAT *)", "2024-03-10T10:00:00Z"), "2024-03-16T10:00:00.000Z");
    EXPECT_THAT(fires("cron(0 10 ? * SUN,SAT *)", "2024-03-10T10:00:00Z", 3),
                ElementsAre("2024-03-16T10:00:00.000Z", "2024-03-17T10:00:00.000Z", "2024-03-23T10:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 10 ? * 2-6 *)", "2024-03-14T10:00:00Z", 3),
                ElementsAre("2024-03-15T10:00:00.000Z", "2024-03-18T10:00:00.000Z", "2024-03-19T10:00:00.000Z"));
    EXPECT_THAT(fires("cron(0 10 ? * TUE-THU *)", "2024-03-14T10:00:00Z", 2),
                ElementsAre("2024-03-19T10:00:00.000Z", "2024-03-20T10:00:00.000Z"));
    // '*' with day-of-month '?' is every day.
    EXPECT_THAT(fires("cron(0 10 ? * * *)", "2024-02-28T10:00:00Z", 2),
                ElementsAre("2024-02-29T10:00:00.000Z", "2024-03-01T10:00:00.000Z"));
}

TEST(ScheduleCron, LastInDayOfWeek) {
    // The page: L alone in day-of-week is the last day of the week, Saturday.
    EXPECT_EQ(next("cron(0 0 ? * L *)", "2024-03-10T00:00:00Z"), "2024-03-16T00:00:00.000Z");
    // nL: the last such weekday of the month. Last Friday of March 2024 is the 29th; of
    // April, the 26th. Last Sunday of March 2024 is the 31st.
    EXPECT_THAT(fires("cron(0 0 ? * 6L *)", "2024-03-01T00:00:00Z", 2),
                ElementsAre("2024-03-29T00:00:00.000Z", "2024-04-26T00:00:00.000Z"));
    EXPECT_EQ(next("cron(0 0 ? * FRIL *)", "2024-03-01T00:00:00Z"), "2024-03-29T00:00:00.000Z");
    EXPECT_EQ(next("cron(0 0 ? * 1L *)", "2024-03-01T00:00:00Z"), "2024-03-31T00:00:00.000Z");
    // The last Thursday of February 2024 (a leap February ending on Thursday the 29th).
    EXPECT_EQ(next("cron(0 0 ? 2 5L *)", "2024-01-01T00:00:00Z"), "2024-02-29T00:00:00.000Z");
}

TEST(ScheduleCron, NthWeekdayOfMonth) {
    // The page's example: 3#2 is the second Tuesday. March 2024: the 12th; April: the 9th.
    EXPECT_THAT(fires("cron(0 9 ? * 3#2 *)", "2024-03-01T00:00:00Z", 2),
                ElementsAre("2024-03-12T09:00:00.000Z", "2024-04-09T09:00:00.000Z"));
    // The page's example cron(0 9 ? * 2#1 *): the first Monday. April 2024 starts on one.
    EXPECT_THAT(fires("cron(0 9 ? * 2#1 *)", "2024-03-04T09:00:00Z", 2),
                ElementsAre("2024-04-01T09:00:00.000Z", "2024-05-06T09:00:00.000Z"));
    // Fifth Fridays only in months that have one: March, May, August, November 2024.
    EXPECT_THAT(fires("cron(0 0 ? * 6#5 *)", "2024-01-01T00:00:00Z", 4),
                ElementsAre("2024-03-29T00:00:00.000Z", "2024-05-31T00:00:00.000Z", "2024-08-30T00:00:00.000Z",
                            "2024-11-29T00:00:00.000Z"));
    EXPECT_EQ(next("cron(0 0 ? * FRI#5 *)", "2024-01-01T00:00:00Z"), "2024-03-29T00:00:00.000Z");
}

TEST(ScheduleCron, DocumentationExamples) {
    // The examples table on EventBridge's "Cron expressions reference" page. 8 March 2024
    // is a Friday.
    EXPECT_EQ(next("cron(0 10 * * ? *)", "2024-03-08T10:00:00Z"), "2024-03-09T10:00:00.000Z");
    EXPECT_EQ(next("cron(15 12 * * ? *)", "2024-03-08T12:00:00Z"), "2024-03-08T12:15:00.000Z");
    EXPECT_EQ(next("cron(0 18 ? * MON-FRI *)", "2024-03-08T18:00:00Z"), "2024-03-11T18:00:00.000Z");
    EXPECT_EQ(next("cron(0 8 1 * ? *)", "2024-03-08T00:00:00Z"), "2024-04-01T08:00:00.000Z");
    EXPECT_EQ(next("cron(0/15 * * * ? *)", "2024-03-08T23:50:00Z"), "2024-03-09T00:00:00.000Z");
    EXPECT_EQ(next("cron(0/10 * ? * MON-FRI *)", "2024-03-08T23:55:00Z"), "2024-03-11T00:00:00.000Z");
    EXPECT_EQ(next("cron(0/5 8-17 ? * MON-FRI *)", "2024-03-08T17:55:00Z"), "2024-03-11T08:00:00.000Z");
    EXPECT_EQ(next("cron(0/5 8-17 ? * MON-FRI *)", "2024-03-11T07:00:00Z"), "2024-03-11T08:00:00.000Z");
    EXPECT_EQ(next("cron(0 9 ? * 2#1 *)", "2024-03-08T00:00:00Z"), "2024-04-01T09:00:00.000Z");
}

TEST(ScheduleCron, ToleratesExtraWhitespaceBetweenFields) {
    EXPECT_EQ(next("cron(0  12 *\t* ? * )", "2024-03-10T11:00:00Z"), "2024-03-10T12:00:00.000Z");
}

// ---------------------------------------------------------------- cron(): errors

TEST(ScheduleCronErrors, NotAnExpression) {
    const std::string forms =
        "expression: must be rate(value unit) or cron(minutes hours day-of-month month day-of-week year)";
    EXPECT_EQ(error_of(""), forms);
    EXPECT_EQ(error_of("every 5 minutes"), forms);
    EXPECT_EQ(error_of("cron(0 12 * * ? *"), forms);
    EXPECT_EQ(error_of("CRON(0 12 * * ? *)"), forms);
    EXPECT_EQ(error_of(" cron(0 12 * * ? *)"), forms);
    EXPECT_EQ(error_of("moment(2024-03-10T10:00:00)"), forms);
}

TEST(ScheduleCronErrors, WrongFieldCount) {
    EXPECT_EQ(error_of("cron(0 12 * * ?)"),
              "expression: cron needs 6 fields (minutes hours day-of-month month day-of-week year), got 5");
    EXPECT_EQ(error_of("cron(0 0 12 * * ? *)"),
              "expression: cron needs 6 fields (minutes hours day-of-month month day-of-week year), got 7");
    EXPECT_THAT(error_of("cron()"), HasSubstr("got 0"));
}

TEST(ScheduleCronErrors, ValuesOutOfRangeNameTheField) {
    EXPECT_EQ(error_of("cron(60 12 * * ? *)"), "expression: cron minutes field '60': values are 0-59");
    EXPECT_EQ(error_of("cron(0 24 * * ? *)"), "expression: cron hours field '24': values are 0-23");
    EXPECT_EQ(error_of("cron(0 12 0 * ? *)"), "expression: cron day-of-month field '0': values are 1-31");
    EXPECT_EQ(error_of("cron(0 12 32 * ? *)"), "expression: cron day-of-month field '32': values are 1-31");
    EXPECT_EQ(error_of("cron(0 12 * 13 ? *)"), "expression: cron month field '13': values are 1-12 or JAN-DEC");
    EXPECT_EQ(error_of("cron(0 12 * 0 ? *)"), "expression: cron month field '0': values are 1-12 or JAN-DEC");
    EXPECT_EQ(error_of("cron(0 12 * JANUARY ? *)"),
              "expression: cron month field 'JANUARY': values are 1-12 or JAN-DEC");
    EXPECT_EQ(error_of("cron(0 12 * MON ? *)"), "expression: cron month field 'MON': values are 1-12 or JAN-DEC");
    EXPECT_EQ(error_of("cron(0 12 ? * 9 *)"), "expression: cron day-of-week field '9': values are 1-7 or SUN-SAT");
    EXPECT_EQ(error_of("cron(0 12 ? * 0 *)"), "expression: cron day-of-week field '0': values are 1-7 or SUN-SAT");
    EXPECT_EQ(error_of("cron(0 12 ? * SUNDAY *)"),
              "expression: cron day-of-week field 'SUNDAY': values are 1-7 or SUN-SAT");
    EXPECT_EQ(error_of("cron(0 12 ? * JAN *)"), "expression: cron day-of-week field 'JAN': values are 1-7 or SUN-SAT");
    EXPECT_EQ(error_of("cron(0 12 * * ? 1969)"), "expression: cron year field '1969': values are 1970-2199");
    EXPECT_EQ(error_of("cron(0 12 * * ? 2200)"), "expression: cron year field '2200': values are 1970-2199");
    // The bad value inside a list or range is the one named.
    EXPECT_EQ(error_of("cron(0,15,75 12 * * ? *)"), "expression: cron minutes field '75': values are 0-59");
    EXPECT_EQ(error_of("cron(0 20-25 * * ? *)"), "expression: cron hours field '25': values are 0-23");
    EXPECT_EQ(error_of("cron(0 1x * * ? *)"), "expression: cron hours field '1x': values are 0-23");
    EXPECT_EQ(error_of("cron(0 -1 * * ? *)"),
              "expression: cron hours field '-1': a range is two values joined by '-', as in 1-15");
}

TEST(ScheduleCronErrors, WildcardsOutsideTheirFields) {
    EXPECT_EQ(error_of("cron(? 12 * * ? *)"), "expression: cron minutes field '?': wildcards allowed here are , - * /");
    EXPECT_EQ(error_of("cron(0 L * * ? *)"), "expression: cron hours field 'L': wildcards allowed here are , - * /");
    EXPECT_EQ(error_of("cron(0 12 * ? ? *)"), "expression: cron month field '?': wildcards allowed here are , - * /");
    EXPECT_EQ(error_of("cron(0 12 * 1#2 ? *)"),
              "expression: cron month field '1#2': wildcards allowed here are , - * /");
    EXPECT_EQ(error_of("cron(0 12 1#2 * ? *)"),
              "expression: cron day-of-month field '1#2': wildcards allowed here are , - * ? / L W");
    EXPECT_EQ(error_of("cron(0 12 ? * 1/2 *)"),
              "expression: cron day-of-week field '1/2': wildcards allowed here are , - * ? L #");
    EXPECT_EQ(error_of("cron(0 12 * * ? W)"), "expression: cron year field 'W': wildcards allowed here are , - * /");
    EXPECT_EQ(error_of("cron(0 12 * * ? ?)"), "expression: cron year field '?': wildcards allowed here are , - * /");
    EXPECT_EQ(error_of("cron(0 12 1,? * ? *)"),
              "expression: cron day-of-month field '1,?': '?' must be the whole field");
}

TEST(ScheduleCronErrors, ExactlyOneDayFieldIsQuestionMark) {
    EXPECT_EQ(error_of("cron(0 12 * * * *)"),
              "expression: cron day-of-month '*' and day-of-week '*': exactly one of them must be '?'");
    EXPECT_EQ(error_of("cron(0 12 ? * ? *)"),
              "expression: cron day-of-month '?' and day-of-week '?': exactly one of them must be '?'");
    EXPECT_EQ(error_of("cron(0 12 1 * MON *)"),
              "expression: cron day-of-month '1' and day-of-week 'MON': exactly one of them must be '?'");
    EXPECT_EQ(error_of("cron(0 12 L * 6L *)"),
              "expression: cron day-of-month 'L' and day-of-week '6L': exactly one of them must be '?'");
    EXPECT_EQ(error_of("cron(0 12 ? * MON *)"), "(accepted)");
    EXPECT_EQ(error_of("cron(0 12 1 * ? *)"), "(accepted)");
}

TEST(ScheduleCronErrors, BadStepsRangesAndLists) {
    EXPECT_EQ(error_of("cron(*/0 * * * ? *)"),
              "expression: cron minutes field '*/0': the step after '/' must be a positive integer");
    EXPECT_EQ(error_of("cron(*/x * * * ? *)"),
              "expression: cron minutes field '*/x': the step after '/' must be a positive integer");
    EXPECT_EQ(error_of("cron(*/ * * * ? *)"),
              "expression: cron minutes field '*/': the step after '/' must be a positive integer");
    EXPECT_EQ(error_of("cron(/5 * * * ? *)"),
              "expression: cron minutes field '/5': '/' needs a start value or '*' before it");
    EXPECT_EQ(error_of("cron(1/2/3 * * * ? *)"), "expression: cron minutes field '1/2/3': only one '/' per entry");
    EXPECT_EQ(error_of("cron(50-10 * * * ? *)"),
              "expression: cron minutes field '50-10': the range runs backwards; write the lower value first");
    EXPECT_EQ(error_of("cron(0 12 ? * FRI-MON *)"),
              "expression: cron day-of-week field 'FRI-MON': the range runs backwards; write the lower value first");
    EXPECT_EQ(error_of("cron(5- * * * ? *)"),
              "expression: cron minutes field '5-': a range is two values joined by '-', as in 1-15");
    EXPECT_EQ(error_of("cron(1-2-3 * * * ? *)"),
              "expression: cron minutes field '1-2-3': a range is two values joined by '-', as in 1-15");
    EXPECT_EQ(error_of("cron(1,,2 * * * ? *)"), "expression: cron minutes field '1,,2': empty entry in the list");
    EXPECT_EQ(error_of("cron(0 12 ? * MON, *)"), "expression: cron day-of-week field 'MON,': empty entry in the list");
    EXPECT_EQ(error_of("cron(0 12 1, * ? *)"), "expression: cron day-of-month field '1,': empty entry in the list");
}

TEST(ScheduleCronErrors, BadLastAndWeekdayForms) {
    EXPECT_EQ(error_of("cron(0 12 L-3 * ? *)"),
              "expression: cron day-of-month field 'L-3': L stands alone or as LW; offsets such as L-3 are not "
              "supported");
    EXPECT_EQ(error_of("cron(0 12 5L * ? *)"),
              "expression: cron day-of-month field '5L': L and W are written L, LW or a day followed by W, as in 15W");
    EXPECT_EQ(error_of("cron(0 12 W * ? *)"),
              "expression: cron day-of-month field 'W': W follows a single day, as in 15W");
    EXPECT_EQ(error_of("cron(0 12 1-5W * ? *)"),
              "expression: cron day-of-month field '1-5W': W follows a single day, as in 15W");
    EXPECT_EQ(error_of("cron(0 12 32W * ? *)"), "expression: cron day-of-month field '32': values are 1-31");
    EXPECT_EQ(error_of("cron(0 12 ? * 8L *)"), "expression: cron day-of-week field '8': values are 1-7 or SUN-SAT");
    EXPECT_EQ(error_of("cron(0 12 ? * 1-3L *)"),
              "expression: cron day-of-week field '1-3L': L follows a single weekday, as in 6L");
    EXPECT_EQ(error_of("cron(0 12 ? * L-2 *)"),
              "expression: cron day-of-week field 'L-2': L stands alone or follows a single weekday, as in 6L");
}

TEST(ScheduleCronErrors, BadNthWeekday) {
    // The page: "3#1,6#3" is invalid because '#' allows one expression in the field.
    EXPECT_EQ(error_of("cron(0 12 ? * 3#1,6#3 *)"),
              "expression: cron day-of-week field '3#1,6#3': '#' must be the only entry in the field");
    EXPECT_EQ(error_of("cron(0 12 ? * 3#6 *)"),
              "expression: cron day-of-week field '3#6': the occurrence after '#' is 1-5");
    EXPECT_EQ(error_of("cron(0 12 ? * 3#0 *)"),
              "expression: cron day-of-week field '3#0': the occurrence after '#' is 1-5");
    EXPECT_EQ(error_of("cron(0 12 ? * 3# *)"),
              "expression: cron day-of-week field '3#': the occurrence after '#' is 1-5");
    EXPECT_EQ(error_of("cron(0 12 ? * 8#1 *)"), "expression: cron day-of-week field '8': values are 1-7 or SUN-SAT");
    EXPECT_EQ(error_of("cron(0 12 ? * 1-3#2 *)"),
              "expression: cron day-of-week field '1-3#2': '#' joins one weekday and its occurrence, as in 3#2");
    EXPECT_EQ(error_of("cron(0 12 ? * 3#1#2 *)"),
              "expression: cron day-of-week field '3#1#2': '#' joins one weekday and its occurrence, as in 3#2");
}
