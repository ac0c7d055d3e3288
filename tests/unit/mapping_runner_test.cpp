// A mapping's runner against a scripted ChangeSource and a fake MappingDelivery (the seam
// to the dispatcher and the stores): batching by size, by bytes and by window, one batch in
// flight in order, checkpoints and acknowledgements, retries then a dead letter, record
// age, bisecting, partial batch failures, throttles, unwanted events, and a restart from
// the stored checkpoint.
#include "funcd/event_sources/mapping_runner.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "funcd/common/ids.hpp"
#include "funcd/event_sources/sqlite_mapping_store.hpp"
#include "scripted_change_source.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using testing::orders;
using testing::ScriptedChangeSource;

InvocationResult ok(const json& body = nullptr) {
    InvocationResult r;
    r.outcome = Outcome::success;
    r.body = body.is_null() ? std::string() : body.dump();
    return r;
}

InvocationResult function_error() {
    InvocationResult r;
    r.outcome = Outcome::function_error;
    r.error_type = "BadRecord";
    r.body = R"({"errorMessage":"cannot take it","errorType":"BadRecord"})";
    return r;
}

InvocationResult throttled() {
    InvocationResult r;
    r.outcome = Outcome::throttled;
    r.throttled = "ReservedFunctionConcurrentInvocationLimitExceeded";
    r.body = "Rate Exceeded.";
    return r;
}

std::vector<int> ids_in(const json& event) {
    std::vector<int> ids;
    for (const auto& r : event.at("Records")) ids.push_back(r.at("dynamodb").at("Keys").at("id").get<int>());
    return ids;
}

std::vector<int> range(int from, int to) {  // [from, to]
    std::vector<int> out;
    for (int i = from; i <= to; ++i) out.push_back(i);
    return out;
}

class FakeDelivery : public MappingDelivery {
public:
    explicit FakeDelivery(boost::asio::io_context& io) : io_(io) {}

    void invoke(const MappingConfig&, std::string payload, std::function<void(InvocationResult)> done) override {
        const json event = json::parse(payload);
        invocations.push_back(event);
        if (!respond) return held.push_back(std::move(done));
        boost::asio::post(io_, [done, r = respond(event, invocations.size())] { done(r); });
    }
    void fail_batch(const MappingConfig&, FailedBatch f, std::function<void(bool)> done) override {
        failures.push_back(std::move(f));
        boost::asio::post(io_, [done] { done(true); });
    }
    void save_checkpoint(const MappingConfig& c, ChangePosition p, std::function<void(bool)> done) override {
        checkpoints.push_back(p);
        if (store) store->save_checkpoint(c.uuid, p);
        boost::asio::post(io_, [done] { done(true); });
    }

    // How each invocation is answered (`n` counts from 1); unset: held for the test.
    std::function<InvocationResult(const json& event, std::size_t n)> respond;
    std::vector<json> invocations;
    std::vector<std::function<void(InvocationResult)>> held;
    std::vector<FailedBatch> failures;
    std::vector<ChangePosition> checkpoints;
    MappingStore* store = nullptr;

private:
    boost::asio::io_context& io_;
};

class MappingRunnerTest : public ::testing::Test {
protected:
    MappingRunnerTest() : work_(io_.get_executor()), delivery_(io_) {
        config_.uuid = new_uuid();
        config_.function = "orders-fn";
        config_.name = "orders";
        config_.connection = "host=db dbname=app user=app password=secret";
        config_.tables = {"public.orders"};
        timing_ = {1ms, 4ms, 1ms, 4ms, 1ms};
    }
    ~MappingRunnerTest() override {
        // Cancelled timers and posted results hold the runner: let them run out first.
        if (runner_) runner_->stop();
        delivery_.held.clear();
        delivery_.respond = nullptr;
        for (int i = 0; i < 1000 && io_.poll() > 0; ++i) {
        }
        runner_.reset();
    }

    ScriptedChangeSource& start(std::optional<ChangePosition> checkpoint = std::nullopt) {
        auto source = std::make_unique<ScriptedChangeSource>(io_);
        source_ = source.get();
        runner_ = std::make_shared<MappingRunner>(io_, config_, std::move(source), delivery_,
                                                  StreamEventContext{"us-east-1", "arn:test"}, limits_, timing_,
                                                  checkpoint);
        runner_->start();
        return *source_;
    }

    // Runs the loop on this thread until `pred` holds; false after `patience`.
    bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds patience = 10s) {
        const auto give_up = std::chrono::steady_clock::now() + patience;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > give_up) return false;
            io_.run_one_for(5ms);
        }
        return true;
    }
    // Runs the loop for `d` (for what must not happen).
    void run_for(std::chrono::milliseconds d) {
        const auto end = std::chrono::steady_clock::now() + d;
        while (std::chrono::steady_clock::now() < end) io_.run_one_for(2ms);
    }

    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    MappingConfig config_;
    EventSourceLimits limits_;
    DeliveryTiming timing_;
    FakeDelivery delivery_;
    ScriptedChangeSource* source_ = nullptr;
    std::shared_ptr<MappingRunner> runner_;
};

TEST_F(MappingRunnerTest, BatchesAreCutAtBatchSizeInOrder) {
    config_.batch_size = 100;
    delivery_.respond = [](const json&, std::size_t) { return ok(); };
    start().push(orders(1, 250));
    ASSERT_TRUE(run_until([&] { return runner_->status().records_delivered == 250; }));
    ASSERT_EQ(delivery_.invocations.size(), 3u);
    EXPECT_EQ(ids_in(delivery_.invocations[0]), range(1, 100));
    EXPECT_EQ(ids_in(delivery_.invocations[1]), range(101, 200));
    EXPECT_EQ(ids_in(delivery_.invocations[2]), range(201, 250));
    for (std::size_t asked : source_->reads_asked) EXPECT_LE(asked, 100u) << "reads ahead by at most a batch";
}

TEST_F(MappingRunnerTest, BatchesAreCutBeforeTheByteLimit) {
    config_.batch_size = 100;
    const std::string one = stream_record(orders(1, 1)[0], {"us-east-1", "arn:test"}).dump();
    // Room for three records of this size, not four.
    limits_.max_batch_bytes = kStreamEventOverheadBytes + 3 * (one.size() + 1) + 2;
    delivery_.respond = [this](const json& e, std::size_t) {
        EXPECT_LE(e.dump().size(), limits_.max_batch_bytes);
        return ok();
    };
    start().push(orders(1, 7));
    ASSERT_TRUE(run_until([&] { return runner_->status().records_delivered == 7; }));
    ASSERT_EQ(delivery_.invocations.size(), 3u);
    EXPECT_EQ(ids_in(delivery_.invocations[0]), range(1, 3));
    EXPECT_EQ(ids_in(delivery_.invocations[2]), range(7, 7));
}

TEST_F(MappingRunnerTest, TheBatchingWindowGathersChangesThatArriveWithinIt) {
    config_.batch_size = 100;
    config_.maximum_batching_window_s = 1;
    delivery_.respond = [](const json&, std::size_t) { return ok(); };
    ScriptedChangeSource& source = start();
    source.push(orders(1, 3));
    run_for(200ms);
    EXPECT_TRUE(delivery_.invocations.empty()) << "the window is still open";
    source.push(orders(4, 2));
    ASSERT_TRUE(run_until([&] { return delivery_.invocations.size() == 1; }));
    EXPECT_EQ(ids_in(delivery_.invocations[0]), range(1, 5)) << "one batch of everything within the window";
}

TEST_F(MappingRunnerTest, WithoutAWindowWhatIsThereIsSentAtOnce) {
    config_.batch_size = 100;
    start().push(orders(1, 3));
    ASSERT_TRUE(run_until([&] { return delivery_.invocations.size() == 1; }, 2s));
    EXPECT_EQ(ids_in(delivery_.invocations[0]), range(1, 3));
}

TEST_F(MappingRunnerTest, OneBatchIsInFlightAtATime) {
    config_.batch_size = 2;
    ScriptedChangeSource& source = start();
    source.push(orders(1, 6));
    ASSERT_TRUE(run_until([&] { return delivery_.invocations.size() == 1; }));
    run_for(100ms);
    EXPECT_EQ(delivery_.invocations.size(), 1u) << "the next batch waits for this one's outcome";
    for (std::size_t n = 1; n <= 3; ++n) {
        ASSERT_TRUE(run_until([&] { return delivery_.held.size() == n; }));
        auto done = delivery_.held.back();
        done(ok());
        if (n < 3) {
            ASSERT_TRUE(run_until([&] { return delivery_.invocations.size() == n + 1; }));
        }
    }
    ASSERT_TRUE(run_until([&] { return delivery_.checkpoints.size() == 3; }));
    EXPECT_EQ(ids_in(delivery_.invocations[0]), (std::vector<int>{1, 2}));
    EXPECT_EQ(ids_in(delivery_.invocations[1]), (std::vector<int>{3, 4}));
    EXPECT_EQ(ids_in(delivery_.invocations[2]), (std::vector<int>{5, 6}));
}

TEST_F(MappingRunnerTest, SuccessCheckpointsTheLastChangeAndAcknowledgesWholeTransactions) {
    config_.batch_size = 3;
    delivery_.respond = [](const json&, std::size_t) { return ok(); };
    // Two transactions of two changes, in batches of three: the first batch ends inside the second.
    auto changes = orders(1, 4, 2);  // tx 0x1100: ids 1, 2; tx 0x1200: ids 3, 4
    ScriptedChangeSource& source = start();
    source.push(changes);
    ASSERT_TRUE(run_until([&] { return runner_->status().records_delivered == 4; }));
    EXPECT_EQ(delivery_.checkpoints[0], changes[2].position) << "the batch's last change";
    EXPECT_EQ(delivery_.checkpoints[1], changes[3].position);
    // After the first batch only the first transaction is whole; after the second, both.
    EXPECT_EQ(source.acknowledged, (std::vector<std::uint64_t>{changes[1].position.commit_lsn,
                                                                changes[3].position.commit_lsn}));
    EXPECT_EQ(runner_->status().checkpoint, changes[3].position);
}

TEST_F(MappingRunnerTest, AFailingBatchIsRetriedThenDeadLetteredAndTheMappingMovesOn) {
    config_.batch_size = 2;
    config_.maximum_retry_attempts = 2;
    delivery_.respond = [](const json& e, std::size_t) { return ids_in(e).front() == 1 ? function_error() : ok(); };
    ScriptedChangeSource& source = start();
    source.push(orders(1, 4));
    ASSERT_TRUE(run_until([&] { return runner_->status().records_delivered == 2; }));
    ASSERT_EQ(delivery_.invocations.size(), 4u) << "three attempts of the first batch, then the second";
    for (int i = 0; i < 3; ++i) EXPECT_EQ(ids_in(delivery_.invocations[i]), (std::vector<int>{1, 2}));
    EXPECT_EQ(ids_in(delivery_.invocations[3]), (std::vector<int>{3, 4}));
    ASSERT_EQ(delivery_.failures.size(), 1u);
    const FailedBatch& f = delivery_.failures[0];
    EXPECT_EQ(f.condition, "RetryAttemptsExhausted");
    EXPECT_EQ(f.attempts, 3);
    EXPECT_EQ(f.batch_size, 2u);
    EXPECT_EQ(f.errors.size(), 3u);
    EXPECT_EQ(f.errors[0]["error_type"], "BadRecord");
    EXPECT_EQ(ids_in(json::parse(f.payload)), (std::vector<int>{1, 2})) << "the dead letter holds the batch";
    const auto changes = orders(1, 4);
    EXPECT_EQ(f.first_sequence_number, format_lsn(changes[0].lsn));
    EXPECT_EQ(f.last_sequence_number, format_lsn(changes[1].lsn));
    // Checkpointed past the failed batch, then past the delivered one.
    ASSERT_EQ(delivery_.checkpoints.size(), 2u);
    EXPECT_EQ(delivery_.checkpoints[0], changes[1].position);
    EXPECT_EQ(runner_->status().batches_failed, 1u);
}

TEST_F(MappingRunnerTest, RecordsOlderThanTheMaximumAgeAreGivenUpWithoutAnInvocation) {
    config_.maximum_record_age_s = 60;
    delivery_.respond = [](const json&, std::size_t) { return ok(); };
    ScriptedChangeSource& source = start();
    source.push(orders(1, 2, 1, 0x1000, std::chrono::system_clock::now() - 120s));
    ASSERT_TRUE(run_until([&] { return delivery_.failures.size() == 1; }));
    EXPECT_EQ(delivery_.failures[0].condition, "RecordAgeExceeded");
    EXPECT_EQ(delivery_.failures[0].attempts, 0);
    EXPECT_TRUE(delivery_.invocations.empty());
    ASSERT_TRUE(run_until([&] { return delivery_.checkpoints.size() == 1; }));
    source.push(orders(3, 1));
    ASSERT_TRUE(run_until([&] { return delivery_.invocations.size() == 1; }));
    EXPECT_EQ(ids_in(delivery_.invocations[0]), (std::vector<int>{3}));
}

TEST_F(MappingRunnerTest, RecordsExpireWhileTheirBatchIsRetried) {
    config_.maximum_record_age_s = 60;
    config_.maximum_retry_attempts = -1;  // forever, but for the age
    delivery_.respond = [](const json&, std::size_t) { return function_error(); };
    // 59.9 s old: the first attempts run, then the records pass 60 s.
    start().push(orders(1, 1, 1, 0x1000, std::chrono::system_clock::now() - 59'900ms));
    ASSERT_TRUE(run_until([&] { return delivery_.failures.size() == 1; }));
    EXPECT_EQ(delivery_.failures[0].condition, "RecordAgeExceeded");
    EXPECT_GE(delivery_.invocations.size(), 1u);
}

TEST_F(MappingRunnerTest, BisectingFindsTheBadRecordAndDeliversTheRest) {
    config_.batch_size = 8;
    config_.maximum_retry_attempts = 0;
    config_.bisect_batch_on_function_error = true;
    std::vector<int> delivered;
    delivery_.respond = [&](const json& e, std::size_t) {
        const auto ids = ids_in(e);
        if (std::find(ids.begin(), ids.end(), 5) != ids.end()) return function_error();
        delivered.insert(delivered.end(), ids.begin(), ids.end());
        return ok();
    };
    start().push(orders(1, 8));
    ASSERT_TRUE(run_until([&] { return runner_->status().checkpoint == orders(1, 8)[7].position; }));
    EXPECT_EQ(delivered, (std::vector<int>{1, 2, 3, 4, 6, 7, 8})) << "in order, all but the bad one";
    ASSERT_EQ(delivery_.failures.size(), 1u);
    EXPECT_EQ(ids_in(json::parse(delivery_.failures[0].payload)), (std::vector<int>{5}));
    EXPECT_EQ(delivery_.failures[0].attempts, 1) << "splits are not retries: one attempt of the single record";
    // 1-8, 1-4, 5-8, 5-6, 5, 6, 7-8.
    EXPECT_EQ(delivery_.invocations.size(), 7u);
}

TEST_F(MappingRunnerTest, ReportedItemFailuresResumeFromTheFirstFailedRecord) {
    config_.batch_size = 5;
    config_.report_batch_item_failures = true;
    const auto changes = orders(1, 5);
    delivery_.respond = [&](const json& e, std::size_t n) {
        if (n == 1)
            return ok({{"batchItemFailures",
                        {{{"itemIdentifier", format_lsn(changes[4].lsn)}},
                         {{"itemIdentifier", e["Records"][2]["dynamodb"]["SequenceNumber"]}}}}});
        return ok({{"batchItemFailures", json::array()}});
    };
    start().push(changes);
    ASSERT_TRUE(run_until([&] { return runner_->status().records_delivered == 5; }));
    ASSERT_EQ(delivery_.invocations.size(), 2u);
    ASSERT_EQ(delivery_.checkpoints.size(), 2u);
    EXPECT_EQ(delivery_.checkpoints[0], changes[1].position) << "up to just before the first failed record";
    EXPECT_EQ(ids_in(delivery_.invocations[1]), (std::vector<int>{3, 4, 5})) << "resumed from it";
    EXPECT_EQ(delivery_.checkpoints[1], changes[4].position);
}

TEST_F(MappingRunnerTest, AMalformedItemFailureResponseFailsTheWholeBatch) {
    config_.batch_size = 3;
    config_.report_batch_item_failures = true;
    config_.maximum_retry_attempts = 1;
    delivery_.respond = [](const json&, std::size_t n) {
        return n == 1 ? ok({{"batchItemFailures", {{{"itemIdentifier", "0/DEADBEEF"}}}}}) : ok();
    };
    start().push(orders(1, 3));
    ASSERT_TRUE(run_until([&] { return delivery_.checkpoints.size() == 1; }));
    ASSERT_EQ(delivery_.invocations.size(), 2u);
    EXPECT_EQ(ids_in(delivery_.invocations[1]), (std::vector<int>{1, 2, 3})) << "the whole batch again";
    EXPECT_TRUE(delivery_.failures.empty());
}

TEST_F(MappingRunnerTest, AThrottledBatchWaitsWithoutSpendingRetries) {
    config_.maximum_retry_attempts = 0;
    delivery_.respond = [](const json&, std::size_t n) { return n <= 5 ? throttled() : ok(); };
    start().push(orders(1, 2));
    ASSERT_TRUE(run_until([&] { return runner_->status().records_delivered == 2; }));
    EXPECT_EQ(delivery_.invocations.size(), 6u);
    for (const auto& e : delivery_.invocations) EXPECT_EQ(ids_in(e), (std::vector<int>{1, 2})) << "nothing dropped";
    EXPECT_TRUE(delivery_.failures.empty()) << "a throttle is not a failure";
    EXPECT_EQ(runner_->status().throttles, 5u);
}

TEST_F(MappingRunnerTest, ChangesOfUnwantedEventsAreCheckpointedButNotSent) {
    config_.events = {RowOperation::insert};
    delivery_.respond = [](const json&, std::size_t) { return ok(); };
    auto changes = orders(1, 4);
    changes[1].operation = RowOperation::update;
    changes[3].operation = RowOperation::remove;
    changes[3].new_image = nullptr;
    start().push(changes);
    ASSERT_TRUE(run_until([&] { return runner_->status().checkpoint == changes[3].position; }));
    std::vector<int> sent;
    for (const auto& e : delivery_.invocations)
        for (int id : ids_in(e)) sent.push_back(id);
    EXPECT_EQ(sent, (std::vector<int>{1, 3}));
}

TEST_F(MappingRunnerTest, AfterARestartDeliveryResumesAfterTheStoredCheckpoint) {
    const auto dir = std::filesystem::temp_directory_path() / ("funcd-runner-" + random_hex(6));
    std::filesystem::create_directories(dir);
    {
        const EnvCipher cipher = EnvCipher::load(dir / "env.keys");
        SqliteMappingStore store(dir / "funcd.db", cipher);
        store.put(config_);
        delivery_.store = &store;
        config_.batch_size = 2;
        std::size_t answered = 0;
        delivery_.respond = [&](const json&, std::size_t) {
            ++answered;
            return ok();
        };
        ScriptedChangeSource& first = start();
        EXPECT_EQ(first.started_after, ChangePosition{}) << "never delivered: from the start";
        first.push(orders(1, 2));
        ASSERT_TRUE(run_until([&] { return delivery_.checkpoints.size() == 1; }));
        // The daemon dies: the runner is gone with whatever it had read.
        delivery_.respond = nullptr;
        first.push(orders(3, 2));
        ASSERT_TRUE(run_until([&] { return delivery_.held.size() == 1; }));
        runner_->stop();
        runner_.reset();
        delivery_.held.clear();
        delivery_.store = nullptr;
    }
    const EnvCipher cipher = EnvCipher::load(dir / "env.keys");
    SqliteMappingStore store(dir / "funcd.db", cipher);
    const auto stored = store.list();
    ASSERT_EQ(stored.size(), 1u);
    ASSERT_TRUE(stored[0].checkpoint);
    EXPECT_EQ(*stored[0].checkpoint, orders(1, 2)[1].position);
    delivery_.respond = [](const json&, std::size_t) { return ok(); };
    delivery_.invocations.clear();
    ScriptedChangeSource& second = start(stored[0].checkpoint);
    EXPECT_EQ(second.started_after, stored[0].checkpoint);
    // The server sends everything its slot still has; what was delivered is skipped.
    second.push(orders(1, 4));
    ASSERT_TRUE(run_until([&] { return runner_->status().records_delivered == 2; }));
    ASSERT_EQ(delivery_.invocations.size(), 1u);
    EXPECT_EQ(ids_in(delivery_.invocations[0]), (std::vector<int>{3, 4}));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

TEST_F(MappingRunnerTest, StatusReportsLagAndFailing) {
    config_.maximum_retry_attempts = -1;
    delivery_.respond = [](const json&, std::size_t) { return function_error(); };
    ScriptedChangeSource& source = start();
    ChangeSourceStatus s;
    s.connected = true;
    s.server_wal_end = 0x5000;
    source.set_status(s);
    source.push(orders(1, 1, 1, 0x1000, std::chrono::system_clock::now() - 30s));
    ASSERT_TRUE(run_until([&] { return delivery_.invocations.size() >= 2; }));
    const MappingRunnerStatus st = runner_->status();
    EXPECT_TRUE(st.failing);
    EXPECT_EQ(st.lag_bytes, 0x5000u);
    EXPECT_GE(st.seconds_behind, 30.0);
    EXPECT_NE(st.last_error.find("BadRecord"), std::string::npos) << st.last_error;
}

TEST_F(MappingRunnerTest, AnIdleMappingShowsNoLagOnceTheServerMayForgetItsOtherWal) {
    delivery_.respond = [](const json&, std::size_t) { return ok(); };
    ScriptedChangeSource& source = start();
    source.push(orders(1, 2, 1, 0x1000));
    ASSERT_TRUE(run_until([&] { return runner_->status().records_delivered == 2; }));
    // The server wrote WAL of other tables since: behind it, until the source may confirm it.
    ChangeSourceStatus s;
    s.connected = true;
    s.server_wal_end = 0x9000;
    source.set_status(s);
    ASSERT_TRUE(runner_->status().lag_bytes);
    EXPECT_GT(*runner_->status().lag_bytes, 0u);
    s.confirmed = 0x9000;
    source.set_status(s);
    EXPECT_EQ(runner_->status().lag_bytes, 0u);
}

TEST(ItemFailures, FollowLambdasRules) {
    const std::vector<std::string> seqs{"0/10", "0/20", "0/30"};
    EXPECT_EQ(parse_item_failures("", seqs).kind(), ItemFailures::Kind::none);
    EXPECT_EQ(parse_item_failures("null", seqs).kind(), ItemFailures::Kind::none);
    EXPECT_EQ(parse_item_failures("{}", seqs).kind(), ItemFailures::Kind::none);
    EXPECT_EQ(parse_item_failures(R"({"batchItemFailures":null})", seqs).kind(), ItemFailures::Kind::none);
    EXPECT_EQ(parse_item_failures(R"({"batchItemFailures":[]})", seqs).kind(), ItemFailures::Kind::none);
    const auto two = parse_item_failures(R"({"batchItemFailures":[{"itemIdentifier":"0/30"},{"itemIdentifier":"0/20"}]})", seqs);
    ASSERT_EQ(two.kind(), ItemFailures::Kind::from);
    EXPECT_EQ(two.index(), 1u) << "the earliest failed record";
    for (const char* bad : {"not json", "[1]", "\"ok\"", R"({"batchItemFailures":{}})",
                            R"({"batchItemFailures":[{"itemIdentifier":""}]})",
                            R"({"batchItemFailures":[{"itemIdentifier":null}]})",
                            R"({"batchItemFailures":[{"itemIdentifier":30}]})",
                            R"({"batchItemFailures":[{"id":"0/10"}]})",
                            R"({"batchItemFailures":[{"itemIdentifier":"0/40"}]})"})
        EXPECT_EQ(parse_item_failures(bad, seqs).kind(), ItemFailures::Kind::malformed) << bad;
}

}  // namespace
}  // namespace funcd
