// The metrics exposition (Prometheus text 0.0.4 and OpenMetrics 1.0), the histogram and the
// per-function record, checked against exact text and a strict parser.
#include <gtest/gtest.h>

#include "../integration/exposition_parser.hpp"
#include "funcd/observe/exposition.hpp"
#include "funcd/observe/function_metrics.hpp"
#include "funcd/observe/histogram.hpp"
#include "funcd/observe/metrics_snapshot.hpp"

namespace funcd::observe {
namespace {

using funcd::testing::parse_exposition;

constexpr std::int64_t kBounds[] = {500, 1'000, 1'000'000};

std::string counter_exposition(ExpositionFormat f) {
    ExpositionWriter w(f);
    w.family("funcd_invocations_total", MetricType::counter, "Invocations.");
    w.sample({{"function", "a"}, {"outcome", "success"}}, std::uint64_t{3});
    w.sample({{"function", "b"}, {"outcome", "timeout"}}, std::uint64_t{0});
    w.family("funcd_workers", MetricType::gauge, "Workers.");
    w.sample({{"function", "a"}}, std::int64_t{2});
    w.family("funcd_build_info", MetricType::info, "Build.");
    w.sample({{"version", "0.1.0"}}, std::uint64_t{1});
    return std::move(w).finish();
}

TEST(Exposition, TextFormatNamesCountersWithTotalAndInfoAsGauge) {
    EXPECT_EQ(counter_exposition(ExpositionFormat::prometheus_text),
              "# HELP funcd_invocations_total Invocations.\n"
              "# TYPE funcd_invocations_total counter\n"
              "funcd_invocations_total{function=\"a\",outcome=\"success\"} 3\n"
              "funcd_invocations_total{function=\"b\",outcome=\"timeout\"} 0\n"
              "# HELP funcd_workers Workers.\n"
              "# TYPE funcd_workers gauge\n"
              "funcd_workers{function=\"a\"} 2\n"
              "# HELP funcd_build_info Build.\n"
              "# TYPE funcd_build_info gauge\n"
              "funcd_build_info{version=\"0.1.0\"} 1\n");
}

TEST(Exposition, OpenMetricsNamesFamiliesWithoutTotalHasInfoAndEndsWithEof) {
    EXPECT_EQ(counter_exposition(ExpositionFormat::openmetrics),
              "# HELP funcd_invocations Invocations.\n"
              "# TYPE funcd_invocations counter\n"
              "funcd_invocations_total{function=\"a\",outcome=\"success\"} 3\n"
              "funcd_invocations_total{function=\"b\",outcome=\"timeout\"} 0\n"
              "# HELP funcd_workers Workers.\n"
              "# TYPE funcd_workers gauge\n"
              "funcd_workers{function=\"a\"} 2\n"
              "# HELP funcd_build Build.\n"
              "# TYPE funcd_build info\n"
              "funcd_build_info{version=\"0.1.0\"} 1\n"
              "# EOF\n");
}

TEST(Exposition, BothFormatsPassTheStrictParser) {
    auto text = parse_exposition(counter_exposition(ExpositionFormat::prometheus_text), false);
    EXPECT_EQ(text.value("funcd_invocations_total", {{"function", "a"}, {"outcome", "success"}}), 3);
    auto om = parse_exposition(counter_exposition(ExpositionFormat::openmetrics), true);
    EXPECT_EQ(om.families.at("funcd_invocations").type, "counter");
    EXPECT_EQ(om.value("funcd_build_info", {{"version", "0.1.0"}}), 1);
    // Each format is invalid as the other.
    EXPECT_THROW(parse_exposition(counter_exposition(ExpositionFormat::prometheus_text), true), std::runtime_error);
    EXPECT_THROW(parse_exposition(counter_exposition(ExpositionFormat::openmetrics), false), std::runtime_error);
}

TEST(Exposition, LabelValuesAreEscapedAndParseBackToTheOriginal) {
    const std::string nasty = "a\\b\"c\nd}e,f=g";
    for (auto f : {ExpositionFormat::prometheus_text, ExpositionFormat::openmetrics}) {
        ExpositionWriter w(f);
        w.family("funcd_workers", MetricType::gauge, "Workers.");
        w.sample({{"function", nasty}}, std::uint64_t{7});
        const std::string out = std::move(w).finish();
        EXPECT_NE(out.find(R"(funcd_workers{function="a\\b\"c\nd}e,f=g"} 7)"), std::string::npos) << out;
        auto parsed = parse_exposition(out, f == ExpositionFormat::openmetrics);
        EXPECT_EQ(parsed.value("funcd_workers", {{"function", nasty}}), 7);
    }
}

TEST(Exposition, HelpIsEscapedPerFormat) {
    const std::string help = "a \\ b \"quoted\"\nsecond line";
    ExpositionWriter text(ExpositionFormat::prometheus_text);
    text.family("x", MetricType::gauge, help);
    EXPECT_EQ(std::move(text).finish(), "# HELP x a \\\\ b \"quoted\"\\nsecond line\n# TYPE x gauge\n");
    ExpositionWriter om(ExpositionFormat::openmetrics);
    om.family("x", MetricType::gauge, help);
    EXPECT_EQ(std::move(om).finish(), "# HELP x a \\\\ b \\\"quoted\\\"\\nsecond line\n# TYPE x gauge\n# EOF\n");
}

TEST(Exposition, HistogramBucketsAreCumulativeWithCountAndExactSum) {
    Histogram h(kBounds);
    h.observe_us(500);        // on the bound: "less than or equal"
    h.observe_us(501);
    h.observe_us(1'000);
    h.observe_us(2'000'000);  // past the last bound: +Inf only
    for (auto f : {ExpositionFormat::prometheus_text, ExpositionFormat::openmetrics}) {
        ExpositionWriter w(f);
        w.family("funcd_invocation_duration_seconds", MetricType::histogram, "Duration.");
        w.histogram({{"function", "a"}}, h.snapshot());
        const std::string out = std::move(w).finish();
        const std::string expected_samples =
            "funcd_invocation_duration_seconds_bucket{function=\"a\",le=\"0.0005\"} 1\n"
            "funcd_invocation_duration_seconds_bucket{function=\"a\",le=\"0.001\"} 3\n"
            "funcd_invocation_duration_seconds_bucket{function=\"a\",le=\"1.0\"} 3\n"
            "funcd_invocation_duration_seconds_bucket{function=\"a\",le=\"+Inf\"} 4\n"
            "funcd_invocation_duration_seconds_sum{function=\"a\"} 2.002001\n"
            "funcd_invocation_duration_seconds_count{function=\"a\"} 4\n";
        EXPECT_NE(out.find(expected_samples), std::string::npos) << out;
        auto parsed = parse_exposition(out, f == ExpositionFormat::openmetrics);
        EXPECT_EQ(parsed.value("funcd_invocation_duration_seconds_count", {{"function", "a"}}), 4);
    }
}

TEST(Exposition, AnEmptyHistogramHasEveryBucketAtZero) {
    Histogram h(kDurationBucketsUs);
    ExpositionWriter w(ExpositionFormat::openmetrics);
    w.family("h", MetricType::histogram, "H.");
    w.histogram({}, h.snapshot());
    auto parsed = parse_exposition(std::move(w).finish(), true);
    EXPECT_EQ(parsed.families.at("h").samples.size(), std::size(kDurationBucketsUs) + 1 + 2);
    EXPECT_EQ(parsed.value("h_bucket", {{"le", "900.0"}}), 0);
    EXPECT_EQ(parsed.value("h_bucket", {{"le", "0.0005"}}), 0);
    EXPECT_EQ(parsed.value("h_sum"), 0);
}

TEST(Exposition, ValuesAndBoundsAreWrittenAsFloatsBothFormatsRead) {
    EXPECT_EQ(format_bound(1.0), "1.0");
    EXPECT_EQ(format_bound(900.0), "900.0");
    EXPECT_EQ(format_bound(0.0025), "0.0025");
    EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
    EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
    EXPECT_EQ(format_value(0.0 / 0.0), "NaN");
    EXPECT_EQ(format_value(0.25), "0.25");
}

TEST(Exposition, TheScrapersAcceptHeaderChoosesTheFormat) {
    // What Prometheus 2.x and 3.x send by default.
    EXPECT_EQ(negotiate_format("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                               "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
              ExpositionFormat::openmetrics);
    EXPECT_EQ(negotiate_format("application/openmetrics-text"), ExpositionFormat::openmetrics);
    EXPECT_EQ(negotiate_format("Application/OpenMetrics-Text; Version=1.0.0"), ExpositionFormat::openmetrics);
    EXPECT_EQ(negotiate_format(""), ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format("*/*"), ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format("text/plain;version=0.0.4"), ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format("text/plain, application/openmetrics-text;q=0.5"), ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format("application/openmetrics-text;q=0"), ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format("application/openmetrics-text;version=2.0.0"), ExpositionFormat::prometheus_text);
    EXPECT_EQ(content_type(ExpositionFormat::openmetrics), "application/openmetrics-text; version=1.0.0; charset=utf-8");
    EXPECT_EQ(content_type(ExpositionFormat::prometheus_text), "text/plain; version=0.0.4; charset=utf-8");
}

TEST(Exposition, TheStrictParserRefusesWhatEitherFormatForbids) {
    // Each of these breaks one rule; the parser must catch it, or the tests prove nothing.
    const std::vector<std::pair<std::string, bool>> bad = {
        {"# TYPE a counter\na 1\n", true},                               // no # EOF
        {"# TYPE a_total counter\na_total 1\n# EOF\n", true},           // OpenMetrics family with _total
        {"# TYPE a counter\na 1\n# EOF\n", true},                       // OpenMetrics counter sample without _total
        {"# TYPE a gauge\na 1\na 2\n", false},                          // duplicate series
        {"# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n", false},              // label twice
        {"# TYPE a gauge\na{x=\"\\t\"} 1\n", false},                    // unknown escape
        {"# TYPE a gauge\na{x=1} 1\n", false},                          // unquoted label value
        {"# TYPE a gauge\na one\n", false},                             // not a number
        {"a 1\n", false},                                               // no TYPE
        {"# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"y\"} 1\n", false},  // a not contiguous
        {"# TYPE a gauge\na 1", false},                                 // no final line feed
        {"# TYPE h histogram\nh_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", false},
        {"# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", false},
        {"# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_sum 1\nh_count 1\n", false},  // no +Inf
        {"# TYPE a counter\na -1\n", false},                            // negative counter
    };
    for (const auto& [text, om] : bad) EXPECT_THROW(parse_exposition(text, om), std::runtime_error) << text;
}

TEST(FunctionMetrics, CountsEachOutcomeAndObservesDurationsOfInvocationsThatRan) {
    FunctionMetrics m;
    m.completed({Outcome::success, 1'500, 2, 128, 250'000, "python3.12"});  // a cold start
    m.completed({Outcome::success, 400, 1, 128, std::nullopt, ""});
    m.completed({Outcome::function_error, 2'000, 2, 128, std::nullopt, ""});
    m.completed({Outcome::timeout, 3'000'000, 3'000, 128, std::nullopt, ""});
    m.completed({Outcome::exit_error, 10, 1, 128, std::nullopt, ""});
    m.completed({Outcome::init_error, 0, 0, 128, 40'000, "python3.12"});  // never ran
    m.throttled(ThrottleReason::reserved_concurrency);
    m.throttled(ThrottleReason::async_queue_full);  // refused at the queue: no invocation

    EXPECT_EQ(m.invocations(InvocationOutcome::success), 2u);
    EXPECT_EQ(m.invocations(InvocationOutcome::function_error), 1u);
    EXPECT_EQ(m.invocations(InvocationOutcome::timeout), 1u);
    EXPECT_EQ(m.invocations(InvocationOutcome::crash), 1u);
    EXPECT_EQ(m.invocations(InvocationOutcome::init_error), 1u);
    EXPECT_EQ(m.invocations(InvocationOutcome::throttled), 1u);
    EXPECT_EQ(m.throttles(ThrottleReason::reserved_concurrency), 1u);
    EXPECT_EQ(m.throttles(ThrottleReason::async_queue_full), 1u);

    // Durations of the five that ran; the init error has none.
    const auto d = m.duration().snapshot();
    EXPECT_EQ(d.count, 5u);
    EXPECT_EQ(d.sum_us, 1'500 + 400 + 2'000 + 3'000'000 + 10);
    const auto billed = m.billed_duration().snapshot();
    EXPECT_EQ(billed.count, 5u);
    EXPECT_EQ(billed.sum_us, (2 + 1 + 2 + 3'000 + 1) * 1000);

    // Cold starts: the success that started a worker and the init that failed.
    EXPECT_EQ(m.cold_starts(), 2u);
    ASSERT_EQ(m.init_durations().size(), 1u);
    EXPECT_EQ(m.init_durations()[0].first, "python3.12");
    EXPECT_EQ(m.init_durations()[0].second->snapshot().sum_us, 290'000);

    // Billed: MB-ms of what ran, and every invocation that was not throttled as a request.
    EXPECT_EQ(m.billed_mb_ms(), (2u + 1 + 2 + 3'000 + 1) * 128);
    EXPECT_EQ(m.billed_requests(), 6u);
}

TEST(FunctionMetrics, ReasonsMapFromWhatTheDispatcherAndTheInvokerSay) {
    EXPECT_EQ(throttle_reason_of("ReservedFunctionConcurrentInvocationLimitExceeded"),
              ThrottleReason::reserved_concurrency);
    EXPECT_EQ(throttle_reason_of("ConcurrentInvocationLimitExceeded"), ThrottleReason::account_concurrency);
    EXPECT_EQ(throttle_reason_of("MemoryBudgetExceeded"), ThrottleReason::memory_budget);
    EXPECT_EQ(throttle_reason_of("UsageStorageUnavailable"), ThrottleReason::usage_storage);
    EXPECT_EQ(throttle_reason_of("AsyncQueueDepthExceeded"), ThrottleReason::async_queue_full);
    EXPECT_EQ(dead_letter_reason_of("RetriesExhausted"), DeadLetterReason::retries_exhausted);
    EXPECT_EQ(dead_letter_reason_of("EventAgeExceeded"), DeadLetterReason::event_age_exceeded);
    EXPECT_EQ(dead_letter_reason_of("ResourceNotFound"), DeadLetterReason::resource_not_found);
    EXPECT_EQ(label(outcome_of(Outcome::exit_error)), "crash");
}

TEST(FunctionMetrics, EventSourcesAndStatusClassesAreSmallFixedSets) {
    EXPECT_EQ(event_source_of("api"), EventSource::api);
    EXPECT_EQ(event_source_of("lambda-api"), EventSource::lambda_api);
    EXPECT_EQ(event_source_of("schedule:nightly"), EventSource::schedule);
    EXPECT_EQ(event_source_of("file:uploads"), EventSource::file);
    EXPECT_EQ(event_source_of("something:else"), EventSource::other);
    FunctionMetrics m;
    for (int status : {200, 201, 302, 404, 429, 502, 99, 600}) m.http_answered(status);
    EXPECT_EQ(m.http_responses(1), 2u);  // 2xx
    EXPECT_EQ(m.http_responses(2), 1u);  // 3xx
    EXPECT_EQ(m.http_responses(3), 2u);  // 4xx
    EXPECT_EQ(m.http_responses(4), 1u);  // 5xx; 99 and 600 are no status
    EXPECT_EQ(status_class_label(1), "2xx");
}

MetricsSnapshot two_functions() {
    FunctionMetrics a, b;
    a.completed({Outcome::success, 800, 1, 1024, 30'000, "python3.12"});
    a.completed({Outcome::timeout, 3'000'000, 3'000, 1024, std::nullopt, ""});
    a.throttled(ThrottleReason::account_concurrency);
    a.async_accepted(EventSource::schedule);
    a.dead_lettered(DeadLetterReason::event_age_exceeded);
    a.http_answered(502);
    MetricsSnapshot s;
    s.functions.push_back(FunctionSnapshot::of("a", a));
    s.functions.push_back(FunctionSnapshot::of("b", b));
    s.functions[0].running = 2;
    s.functions[0].workers_busy = 2;
    s.functions[0].async_oldest_age_s = 1.5;
    s.launch_duration = Histogram(kLaunchBucketsUs).snapshot();
    s.memory_budget_limit_mb = 1024;
    s.memory_budget_used_mb = 256;
    s.python_templates = 2;
    s.process.resident_bytes = 1 << 20;
    s.process.cpu_seconds = 0.25;
    s.mappings.push_back({"a", "orders", 120, 11, 1, 4, 2, 4096, 2.5});
    return s;
}

TEST(MetricsExposition, EveryFamilyIsWrittenAndTheWholeExpositionParsesInBothFormats) {
    const MetricsSnapshot s = two_functions();
    Prices prices;  // Lambda's
    const auto text = parse_exposition(write_exposition(s, ExpositionFormat::prometheus_text, prices), false);
    const auto om = parse_exposition(write_exposition(s, ExpositionFormat::openmetrics, prices), true);
    for (const std::string family :
         {"funcd_invocations", "funcd_invocation_duration_seconds", "funcd_billed_duration_seconds",
          "funcd_cold_starts", "funcd_init_duration_seconds", "funcd_concurrent_executions", "funcd_workers",
          "funcd_throttles", "funcd_billed_gb_seconds", "funcd_cost_usd", "funcd_http_trigger_responses",
          "funcd_log_bytes_dropped", "funcd_async_events", "funcd_async_queue_depth", "funcd_async_event_age_seconds",
          "funcd_async_retries", "funcd_dead_letters", "funcd_async_events_dropped", "funcd_invocations_waiting",
          "funcd_launch_duration_seconds", "funcd_memory_budget_bytes", "funcd_runtime_templates", "funcd_usage_records_pending", "funcd_build",
          "process_cpu_seconds", "process_resident_memory_bytes", "funcd_event_source_records",
          "funcd_event_source_batches", "funcd_event_source_invocation_errors", "funcd_event_source_throttles",
          "funcd_event_source_lag_bytes", "funcd_event_source_age_seconds"}) {
        EXPECT_TRUE(om.families.count(family)) << family;
        const bool counter = om.families.count(family) && om.families.at(family).type == "counter";
        const std::string text_name = family == "funcd_build" ? "funcd_build_info" : counter ? family + "_total" : family;
        EXPECT_TRUE(text.families.count(text_name)) << text_name;
    }
    for (const auto* p : {&text, &om}) {
        EXPECT_EQ(p->value("funcd_invocations_total", {{"function", "a"}, {"outcome", "throttled"}}), 1);
        EXPECT_EQ(p->value("funcd_invocations_total", {{"function", "b"}, {"outcome", "success"}}), 0);
        EXPECT_EQ(p->value("funcd_init_duration_seconds_count", {{"function", "a"}, {"runtime", "python3.12"}}), 1);
        EXPECT_EQ(p->value("funcd_workers", {{"function", "a"}, {"state", "busy"}}), 2);
        EXPECT_EQ(p->value("funcd_async_events_total", {{"function", "a"}, {"source", "schedule"}}), 1);
        EXPECT_EQ(p->value("funcd_dead_letters_total", {{"function", "a"}, {"reason", "event_age_exceeded"}}), 1);
        EXPECT_EQ(p->value("funcd_http_trigger_responses_total", {{"function", "a"}, {"code", "5xx"}}), 1);
        EXPECT_EQ(p->value("funcd_async_event_age_seconds", {{"function", "a"}}), 1.5);
        EXPECT_EQ(p->value("funcd_memory_budget_bytes", {{"state", "used"}}), 256.0 * 1024 * 1024);
        EXPECT_EQ(p->value("funcd_runtime_templates", {{"runtime", "python"}}), 2);
        EXPECT_EQ(p->value("funcd_runtime_templates", {{"runtime", "node"}}), 0);
        // 3,001 billed ms at 1 GB: 3.001 GB-s; cost 3.001 x 0.0000166667 + 2 requests x 0.0000002.
        EXPECT_EQ(p->value("funcd_billed_gb_seconds_total", {{"function", "a"}}), 3.001);
        EXPECT_NEAR(*p->value("funcd_cost_usd_total", {{"function", "a"}}), 3.001 * 0.0000166667 + 2 * 0.0000002,
                    1e-15);
        EXPECT_EQ(p->value("funcd_cost_usd_total", {{"function", "b"}}), 0);
        EXPECT_EQ(p->value("funcd_event_source_records_total", {{"function", "a"}, {"mapping", "orders"}}), 120);
        EXPECT_EQ(p->value("funcd_event_source_batches_total",
                           {{"function", "a"}, {"mapping", "orders"}, {"outcome", "failed"}}),
                  1);
        EXPECT_EQ(p->value("funcd_event_source_lag_bytes", {{"function", "a"}, {"mapping", "orders"}}), 4096);
        EXPECT_EQ(p->value("funcd_event_source_age_seconds", {{"function", "a"}, {"mapping", "orders"}}), 2.5);
    }
}

}  // namespace
}  // namespace funcd::observe
