// Event source mappings outside the runner: settings validation (each field's errors),
// the connection's redaction, the stream event and the on-failure record, the store (the
// connection sealed at rest, checkpoints), the mappings' lifecycle with a scripted source
// factory, and the /v1 API's answers (400s, 404s, redaction).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <atomic>
#include <functional>
#include <mutex>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/event_sources/dispatcher_delivery.hpp"
#include "funcd/event_sources/event_source_mappings.hpp"
#include "funcd/event_sources/mapping_config.hpp"
#include "funcd/event_sources/sqlite_mapping_store.hpp"
#include "funcd/event_sources/stream_event.hpp"
#include "funcd/gateway/event_source_api.hpp"
#include "funcd/lambda_api/event_source_mapping_shapes.hpp"
#include "funcd/lambda_api/lambda_error.hpp"
#include "funcd/registry/record_changes.hpp"
#include "funcd/registry/registry.hpp"
#include "funcd/registry/sqlite.hpp"
#include "funcd/state/sqlite_function_store.hpp"
#include "scripted_change_source.hpp"
#include "zip_builder.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kConnection = "host=db.internal port=5432 dbname=app user=app password=hunter2-secret";

json valid_body() {
    return {{"type", "postgres"}, {"connection", kConnection}, {"tables", {"public.orders", "items"}}};
}

// The message of the ApiError parsing `body` throws; "" when it parses.
std::string refusal(const json& body, const MappingConfig* existing = nullptr) {
    try {
        parse_mapping_config("orders-fn", "orders", body.dump(), existing);
        return "";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400) << e.what();
        return e.what();
    }
}

TEST(MappingConfig, DefaultsAreLambdas) {
    const MappingConfig c = parse_mapping_config("orders-fn", "orders", valid_body().dump(), nullptr);
    EXPECT_EQ(c.tables, (std::vector<std::string>{"public.orders", "public.items"}));
    EXPECT_EQ(c.batch_size, 100);
    EXPECT_EQ(c.maximum_batching_window_s, 0);
    EXPECT_EQ(c.maximum_retry_attempts, -1);
    EXPECT_EQ(c.maximum_record_age_s, -1);
    EXPECT_EQ(c.starting_position, StartingPosition::latest);
    EXPECT_FALSE(c.bisect_batch_on_function_error);
    EXPECT_FALSE(c.report_batch_item_failures);
    EXPECT_TRUE(c.enabled);
    EXPECT_EQ(c.events.size(), 3u);
}

TEST(MappingConfig, EachFieldIsCheckedAndNamedInItsError) {
    struct Case {
        const char* field;
        json value;
        const char* named;  // what the message must contain
    };
    const std::vector<Case> cases = {
        {"type", "mysql", "type"},
        {"type", 1, "type"},
        {"connection", 5, "connection"},
        {"connection", "", "connection"},
        {"connection", "not a connection string", "connection"},
        {"connection", std::string(5000, 'a'), "connection"},
        {"tables", "public.orders", "tables"},
        {"tables", json::array(), "tables"},
        {"tables", {"public.orders", "public.orders"}, "named twice"},
        {"tables", {"a.b.c"}, "tables"},
        {"tables", {"1orders"}, "tables"},
        {"tables", {7}, "tables"},
        {"events", {"insert", "upsert"}, "events"},
        {"events", json::array(), "events"},
        {"events", "insert", "events"},
        {"batch_size", 0, "batch_size"},
        {"batch_size", 10001, "batch_size"},
        {"batch_size", "100", "batch_size"},
        {"batch_size", 1.5, "batch_size"},
        {"maximum_batching_window_s", -1, "maximum_batching_window_s"},
        {"maximum_batching_window_s", 301, "maximum_batching_window_s"},
        {"starting_position", "AT_TIMESTAMP", "starting_position"},
        {"maximum_retry_attempts", -2, "maximum_retry_attempts"},
        {"maximum_retry_attempts", 10001, "maximum_retry_attempts"},
        {"maximum_record_age_s", 59, "maximum_record_age_s"},
        {"maximum_record_age_s", 0, "maximum_record_age_s"},
        {"maximum_record_age_s", 604801, "maximum_record_age_s"},
        {"bisect_batch_on_function_error", "yes", "bisect_batch_on_function_error"},
        {"function_response_types", {"Other"}, "function_response_types"},
        {"function_response_types", "ReportBatchItemFailures", "function_response_types"},
        {"on_failure", 3, "on_failure"},
        {"on_failure", "bad name!", "on_failure"},
        {"on_failure", "orders-fn", "on_failure"},
        {"enabled", 1, "enabled"},
        {"surprise", true, "surprise"},
    };
    for (const auto& c : cases) {
        json body = valid_body();
        body[c.field] = c.value;
        const std::string message = refusal(body);
        EXPECT_NE(message.find(c.named), std::string::npos) << c.field << "=" << c.value.dump() << ": " << message;
        EXPECT_EQ(message.find("hunter2"), std::string::npos) << "never the password: " << message;
    }
    for (const char* required : {"connection", "tables"}) {
        json body = valid_body();
        body.erase(required);
        EXPECT_NE(refusal(body).find(required), std::string::npos) << required;
    }
    // The edges of the ranges are accepted.
    json edges = valid_body();
    edges.update({{"batch_size", 10000}, {"maximum_batching_window_s", 300}, {"maximum_retry_attempts", 10000},
                  {"maximum_record_age_s", 604800}, {"function_response_types", {"ReportBatchItemFailures"}},
                  {"on_failure", "dlq-fn:live"}, {"starting_position", "TRIM_HORIZON"}, {"events", {"delete"}}});
    EXPECT_EQ(refusal(edges), "");
    edges["maximum_record_age_s"] = -1;
    edges["maximum_retry_attempts"] = -1;
    EXPECT_EQ(refusal(edges), "");
}

TEST(MappingConfig, AChangeWithoutAConnectionKeepsTheStoredOne) {
    const MappingConfig old = parse_mapping_config("orders-fn", "orders", valid_body().dump(), nullptr);
    json body = valid_body();
    body.erase("connection");
    body["enabled"] = false;
    const MappingConfig c = parse_mapping_config("orders-fn", "orders", body.dump(), &old);
    EXPECT_EQ(c.connection, kConnection);
    EXPECT_FALSE(c.enabled);
}

TEST(MappingConfig, TheConnectionIsShownWithoutItsPassword) {
    EXPECT_EQ(redact_connection(kConnection), "host=db.internal port=5432 dbname=app user=app password=***");
    EXPECT_EQ(redact_connection("host='db one' password='it\\'s' sslpassword=x"),
              "host='db one' password=*** sslpassword=***");
    EXPECT_EQ(redact_connection("postgresql://app:s%40cret@db:5433/shop?sslmode=require&password=other"),
              "user=app password=*** host=db port=5433 dbname=shop sslmode=require password=***");
    EXPECT_EQ(redact_connection("postgres://db"), "host=db");
    const MappingConfig c = parse_mapping_config("orders-fn", "orders", valid_body().dump(), nullptr);
    const std::string shown = to_json(c).dump();
    EXPECT_EQ(shown.find("hunter2"), std::string::npos) << shown;
    EXPECT_NE(shown.find("password=***"), std::string::npos) << shown;
}

TEST(StreamEvent, RecordsAreShapedAsDynamoDbStreamsRecords) {
    auto changes = testing::orders(1, 1);
    RowChange& insert = changes[0];
    const json r = stream_record(insert, {"eu-west-1", "arn:aws:lambda:eu-west-1:1:event-source-mapping:u"});
    EXPECT_EQ(r["eventName"], "INSERT");
    EXPECT_EQ(r["eventVersion"], "1.1");
    EXPECT_EQ(r["eventSource"], "funcd:postgres");
    EXPECT_EQ(r["awsRegion"], "eu-west-1");
    EXPECT_EQ(r["eventSourceARN"], "arn:aws:lambda:eu-west-1:1:event-source-mapping:u");
    EXPECT_EQ(r["eventID"], format_lsn(insert.position.commit_lsn) + "/0");
    EXPECT_EQ(r["table"], "public.orders");
    EXPECT_EQ(r["transactionId"], insert.xid);
    EXPECT_EQ(r["commitLsn"], format_lsn(insert.position.commit_lsn));
    const json& d = r["dynamodb"];
    EXPECT_EQ(d["SequenceNumber"], format_lsn(insert.lsn));
    EXPECT_EQ(d["Keys"], json({{"id", 1}}));
    EXPECT_EQ(d["NewImage"]["total"], 10.5) << "plain typed values, not DynamoDB's attribute values";
    EXPECT_TRUE(d["NewImage"]["note"].is_null());
    EXPECT_FALSE(d.contains("OldImage"));
    EXPECT_EQ(d["StreamViewType"], "NEW_AND_OLD_IMAGES");
    EXPECT_EQ(d["ApproximateCreationDateTime"],
              std::chrono::duration_cast<std::chrono::seconds>(insert.commit_time.time_since_epoch()).count());
    EXPECT_GT(d["SizeBytes"].get<int>(), 0);

    RowChange update = insert;
    update.operation = RowOperation::update;
    update.old_image = {{"id", 1}, {"total", 3}};
    EXPECT_EQ(stream_record(update, {})["eventName"], "MODIFY");
    EXPECT_EQ(stream_record(update, {})["dynamodb"]["OldImage"]["total"], 3);
    RowChange remove = insert;
    remove.operation = RowOperation::remove;
    remove.new_image = nullptr;
    const json removed = stream_record(remove, {});
    EXPECT_EQ(removed["eventName"], "REMOVE");
    EXPECT_FALSE(removed["dynamodb"].contains("NewImage"));

    const json a = stream_record(insert, {}), b = stream_record(update, {});
    const std::string event = stream_event({&a, &b});
    EXPECT_EQ(json::parse(event)["Records"].size(), 2u);
    EXPECT_EQ(event.size(), kStreamEventOverheadBytes + stream_record_bytes(a) + stream_record_bytes(b) - 1);
}

TEST(StreamEvent, TheOnFailureRecordNamesTheBatch) {
    MappingConfig c;
    c.name = "orders";
    c.tables = {"public.orders"};
    FailedBatch f;
    f.condition = "RetryAttemptsExhausted";
    f.attempts = 3;
    f.batch_size = 2;
    f.first_sequence_number = "0/1080";
    f.last_sequence_number = "0/1180";
    f.first_commit_lsn = 0x1100;
    f.last_commit_lsn = 0x1200;
    f.last_result = InvocationResult{};
    f.last_result->outcome = Outcome::function_error;
    const json r = failure_record(c, f, "arn:fn", "arn:esm", std::chrono::system_clock::now());
    EXPECT_EQ(r["version"], "1.0");
    EXPECT_EQ(r["requestContext"]["condition"], "RetryAttemptsExhausted");
    EXPECT_EQ(r["requestContext"]["functionArn"], "arn:fn");
    EXPECT_EQ(r["requestContext"]["approximateInvokeCount"], 3);
    EXPECT_EQ(r["responseContext"]["functionError"], "Unhandled");
    const json& info = r["PostgresBatchInfo"];
    EXPECT_EQ(info["eventSourceMappingArn"], "arn:esm");
    EXPECT_EQ(info["startSequenceNumber"], "0/1080");
    EXPECT_EQ(info["endSequenceNumber"], "0/1180");
    EXPECT_EQ(info["startCommitLsn"], "0/1100");
    EXPECT_EQ(info["endCommitLsn"], "0/1200");
    EXPECT_EQ(info["batchSize"], 2);
    EXPECT_EQ(dead_letter_reason("RecordAgeExceeded"), "EventAgeExceeded");
    EXPECT_EQ(dead_letter_reason("RetryAttemptsExhausted"), "RetriesExhausted");
}

json lambda_create_body() {
    return {{"FunctionName", "orders-fn"},
            {"SelfManagedEventSource", {{"Endpoints", {{"POSTGRESQL", {"host=db dbname=shop"}}}}}},
            {"SourceAccessConfigurations", {{{"Type", "BASIC_AUTH"}, {"URI", "funcd:hunter2-secret"}}}},
            {"Topics", {"public.orders", "items"}},
            {"StartingPosition", "TRIM_HORIZON"},
            {"BatchSize", 50},
            {"FilterCriteria", {{"Filters", {{{"Pattern", R"({"eventName": ["INSERT", "REMOVE"]})"}}}}}},
            {"MaximumRetryAttempts", 3},
            {"BisectBatchOnFunctionError", true},
            {"FunctionResponseTypes", {"ReportBatchItemFailures"}},
            {"DestinationConfig",
             {{"OnFailure", {{"Destination", "arn:aws:lambda:us-east-1:000000000000:function:dlq-fn"}}}}}};
}

// The status and message of the LambdaError mapping `body` throws; {0, ""} when it maps.
std::pair<int, std::string> lambda_refusal(const json& body, const MappingConfig* existing = nullptr) {
    try {
        mapping_from_lambda(body, "orders-fn", existing);
        return {0, ""};
    } catch (const LambdaError& e) {
        return {e.status(), e.what()};
    }
}

TEST(LambdaMappingShapes, APostgresSourceMapsOntoTheSettingsAndBack) {
    MappingConfig c = mapping_from_lambda(lambda_create_body(), "orders-fn", nullptr);
    EXPECT_EQ(c.connection, "host=db dbname=shop user='funcd' password='hunter2-secret'");
    EXPECT_EQ(c.tables, (std::vector<std::string>{"public.orders", "public.items"}));
    EXPECT_EQ(c.starting_position, StartingPosition::trim_horizon);
    EXPECT_EQ(c.batch_size, 50);
    EXPECT_EQ(c.events, (std::set<RowOperation>{RowOperation::insert, RowOperation::remove}));
    EXPECT_EQ(c.maximum_retry_attempts, 3);
    EXPECT_TRUE(c.bisect_batch_on_function_error);
    EXPECT_TRUE(c.report_batch_item_failures);
    EXPECT_EQ(c.on_failure, "dlq-fn");

    c.uuid = "u-1";
    MappingView v{c, "Failing", {}};
    v.status.last_error = "connection refused";
    const json shown = lambda_mapping_configuration(v, {"us-east-1", "000000000000"}, "arn:esm");
    EXPECT_EQ(shown.dump().find("hunter2"), std::string::npos) << shown.dump();
    EXPECT_EQ(shown["SelfManagedEventSource"]["Endpoints"]["POSTGRESQL"][0],
              "host=db dbname=shop user=funcd password=***");
    EXPECT_EQ(shown["State"], "Enabled") << "Lambda has no Failing state";
    EXPECT_EQ(shown["StateTransitionReason"], "connection refused");
    EXPECT_EQ(shown["Topics"], json({"public.orders", "public.items"}));
    EXPECT_EQ(shown["DestinationConfig"]["OnFailure"]["Destination"],
              "arn:aws:lambda:us-east-1:000000000000:function:dlq-fn");
    EXPECT_EQ(shown["FunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:orders-fn");
    EXPECT_TRUE(shown["LastModified"].is_number());
    EXPECT_EQ(json::parse(shown["FilterCriteria"]["Filters"][0]["Pattern"].get<std::string>())["eventName"],
              json({"INSERT", "REMOVE"}));

    // An update changes what it names and keeps the rest; the source cannot change.
    const MappingConfig updated = mapping_from_lambda({{"BatchSize", 7}, {"Enabled", false}}, "orders-fn", &c);
    EXPECT_EQ(updated.batch_size, 7);
    EXPECT_FALSE(updated.enabled);
    EXPECT_EQ(updated.connection, c.connection);
    EXPECT_EQ(updated.tables, c.tables);
    EXPECT_EQ(lambda_refusal({{"Topics", {"public.other"}}}, &c).first, 400);
}

TEST(LambdaMappingShapes, OtherSourcesAndBadValuesAreRefused) {
    EXPECT_EQ(lambda_refusal({{"FunctionName", "orders-fn"},
                              {"EventSourceArn", "arn:aws:sqs:us-east-1:000000000000:queue"}}),
              (std::pair<int, std::string>{400, "Unrecognized event source."}));
    EXPECT_EQ(lambda_refusal({{"FunctionName", "orders-fn"},
                              {"SelfManagedEventSource", {{"Endpoints", {{"KAFKA_BOOTSTRAP_SERVERS", {"k:9092"}}}}}}})
                  .second,
              "Unrecognized event source.");
    struct Case {
        const char* field;
        json value;
    };
    for (const Case& bad : std::vector<Case>{{"BatchSize", 0},
                                             {"BatchSize", 10001},
                                             {"MaximumBatchingWindowInSeconds", 301},
                                             {"MaximumRecordAgeInSeconds", 30},
                                             {"MaximumRetryAttempts", -2},
                                             {"StartingPosition", "AT_TIMESTAMP"},
                                             {"ParallelizationFactor", 2},
                                             {"TumblingWindowInSeconds", 60},
                                             {"FunctionResponseTypes", {"Other"}},
                                             {"Topics", json::array()},
                                             {"FilterCriteria", {{"Filters", {{{"Pattern", R"({"table": ["x"]})"}}}}}},
                                             {"SourceAccessConfigurations", {{{"Type", "VPC_SUBNET"}, {"URI", "x"}}}},
                                             {"DestinationConfig",
                                              {{"OnFailure", {{"Destination", "arn:aws:sqs:us-east-1:1:q"}}}}}}) {
        json body = lambda_create_body();
        body[bad.field] = bad.value;
        const auto [status, message] = lambda_refusal(body);
        EXPECT_EQ(status, 400) << bad.field << "=" << bad.value.dump();
        EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
    }
}

class ScratchDir : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("funcd-esm-" + random_hex(6));
        fs::create_directories(dir_);
        cipher_ = std::make_unique<EnvCipher>(EnvCipher::load(dir_ / "env.keys"));
    }
    void TearDown() override {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec))
            if (it->is_directory()) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(dir_, ec);
    }
    MappingConfig config(const std::string& function, const std::string& name) {
        MappingConfig c = parse_mapping_config(function, name, valid_body().dump(), nullptr);
        c.uuid = new_uuid();
        return c;
    }
    fs::path dir_;
    std::unique_ptr<EnvCipher> cipher_;
};

using MappingStoreTest = ScratchDir;

TEST_F(MappingStoreTest, MappingsAndCheckpointsSurviveWithTheConnectionSealed) {
    const MappingConfig a = config("orders-fn", "orders");
    MappingConfig b = config("orders-fn", "audit");
    b.batch_size = 7;
    b.on_failure = "dlq";
    {
        SqliteMappingStore store(dir_ / "funcd.db", *cipher_);
        store.put(a);
        store.put(b);
        store.save_checkpoint(a.uuid, {0x16B374D848ull, 3});
    }
    {
        sqlite::Database db(dir_ / "funcd.db");
        sqlite::Statement q(db, "SELECT config_json FROM event_source_mappings");
        int rows = 0;
        while (q.step()) {
            ++rows;
            const std::string doc = q.column_text(0);
            EXPECT_EQ(doc.find("hunter2"), std::string::npos) << doc;
            EXPECT_NE(doc.find("aes-256-gcm"), std::string::npos) << doc;
        }
        EXPECT_EQ(rows, 2);
    }
    std::ifstream raw(dir_ / "funcd.db", std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(raw)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find("hunter2"), std::string::npos) << "not in the database file's bytes either";

    SqliteMappingStore store(dir_ / "funcd.db", *cipher_);
    auto all = store.list();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].config.name, "audit");
    EXPECT_EQ(all[0].config.batch_size, 7);
    EXPECT_EQ(all[0].config.on_failure, "dlq");
    EXPECT_FALSE(all[0].checkpoint);
    EXPECT_EQ(all[1].config.connection, kConnection);
    EXPECT_EQ(all[1].checkpoint, (ChangePosition{0x16B374D848ull, 3}));
    EXPECT_EQ(all[1].config.tables, a.tables);
    EXPECT_EQ(store.drop_function("orders-fn").size(), 2u);
    EXPECT_TRUE(store.list().empty());
}

TEST_F(MappingStoreTest, ASealedConnectionOnlyOpensForItsMapping) {
    const MappingConfig a = config("f", "a"), b = config("f", "b");
    {
        SqliteMappingStore store(dir_ / "funcd.db", *cipher_);
        store.put(a);
        store.put(b);
    }
    {
        sqlite::Database db(dir_ / "funcd.db");
        sqlite::Statement q(db, "SELECT config_json FROM event_source_mappings WHERE uuid = ?1");
        q.bind(1, a.uuid);
        ASSERT_TRUE(q.step());
        json doc = json::parse(q.column_text(0));
        sqlite::Statement u(db, "UPDATE event_source_mappings SET config_json = json_set(config_json, "
                                "'$.connection', json(?1)) WHERE uuid = ?2");
        u.bind(1, doc["connection"].dump()).bind(2, b.uuid).run();
    }
    SqliteMappingStore store(dir_ / "funcd.db", *cipher_);
    const auto all = store.list();
    ASSERT_EQ(all.size(), 1u) << "b's moved connection does not verify";
    EXPECT_EQ(all[0].config.uuid, a.uuid);
}

// The mappings' lifecycle and the /v1 API, with a scripted source factory and a delivery
// that answers every batch at once.
class MappingsTest : public ScratchDir {
protected:
    struct InstantDelivery : MappingDelivery {
        explicit InstantDelivery(boost::asio::io_context& io) : io(io) {}
        void invoke(const MappingConfig&, std::string, std::function<void(InvocationResult)> done) override {
            ++invocations;
            boost::asio::post(io, [done] { done(InvocationResult{}); });
        }
        void fail_batch(const MappingConfig&, FailedBatch, std::function<void(bool)> done) override {
            boost::asio::post(io, [done] { done(true); });
        }
        void save_checkpoint(const MappingConfig& c, ChangePosition p, std::function<void(bool)> done) override {
            if (store) store->save_checkpoint(c.uuid, p);
            boost::asio::post(io, [done] { done(true); });
        }
        boost::asio::io_context& io;
        MappingStore* store = nullptr;
        int invocations = 0;
    };

    void SetUp() override {
        ScratchDir::SetUp();
        store_ = std::make_unique<SqliteMappingStore>(dir_ / "funcd.db", *cipher_);
        open();
    }
    void TearDown() override {
        close();
        ScratchDir::TearDown();
    }
    void open() {
        delivery_.store = store_.get();
        EventSourceMappingsOptions o{"us-east-1", "000000000000", {}, {}};
        o.limits.max_mappings_per_function = 2;
        mappings_ = std::make_unique<EventSourceMappings>(io_, blocking_, *store_, factory_, delivery_, o);
        mappings_->start();
    }
    void close() {
        settle();
        if (mappings_) mappings_->stop();
        for (int i = 0; i < 1000 && io_.poll() > 0; ++i) {
        }
        mappings_.reset();
    }
    // Until the blocking pool has done what was given it, and the loop what that posted back.
    void settle() {
        auto done = std::make_shared<std::atomic<bool>>(false);
        boost::asio::post(blocking_, [done] { *done = true; });
        EXPECT_TRUE(run_until([&] { return done->load(); }));
        for (int i = 0; i < 100 && io_.poll() > 0; ++i) {
        }
    }
    // Runs the loop here until `pred` holds (the blocking pool's work posts back to it).
    bool run_until(const std::function<bool()>& pred) {
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > give_up) return false;
            io_.run_one_for(5ms);
        }
        return true;
    }
    struct Outcome {
        std::exception_ptr error;
        std::optional<MappingView> view;
        bool created = false;
        std::string error_message() const {
            try {
                if (error) std::rethrow_exception(error);
            } catch (const std::exception& e) {
                return e.what();
            }
            return "";
        }
    };
    Outcome put(MappingConfig c) {
        std::optional<Outcome> out;
        mappings_->put(std::move(c), [&](std::exception_ptr e, std::optional<MappingView> v, bool created) {
            out = Outcome{e, std::move(v), created};
        });
        EXPECT_TRUE(run_until([&] { return out.has_value(); }));
        return *out;
    }

    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
    boost::asio::thread_pool blocking_{1};
    testing::ScriptedSourceFactory factory_{io_};
    InstantDelivery delivery_{io_};
    std::unique_ptr<MappingStore> store_;
    std::unique_ptr<EventSourceMappings> mappings_;
};

TEST_F(MappingsTest, ACreatedMappingIsProvisionedStoredAndRun) {
    const Outcome created = put(config("orders-fn", "orders"));
    ASSERT_FALSE(created.error) << created.error_message();
    EXPECT_TRUE(created.created);
    ASSERT_TRUE(created.view);
    EXPECT_EQ(created.view->state, "Enabled");
    const std::string uuid = created.view->config.uuid;
    EXPECT_EQ(factory_.provisioned, (std::vector<std::string>{uuid}));
    ASSERT_TRUE(factory_.sources.contains(uuid));
    testing::ScriptedChangeSource& source = *factory_.sources[uuid];
    EXPECT_TRUE(source.started);
    source.push(testing::orders(1, 3));
    ASSERT_TRUE(run_until([&] { return mappings_->get(uuid)->status.records_delivered == 3; }));
    EXPECT_EQ(store_->list().size(), 1u);
    EXPECT_EQ(mappings_->arn(uuid), "arn:aws:lambda:us-east-1:000000000000:event-source-mapping:" + uuid);

    // Disabled: its source stops; enabled again: a new one starts after the checkpoint.
    MappingConfig off = created.view->config;
    off.enabled = false;
    const Outcome disabled = put(off);
    ASSERT_FALSE(disabled.error) << disabled.error_message();
    EXPECT_FALSE(disabled.created);
    EXPECT_EQ(disabled.view->state, "Disabled");
    EXPECT_TRUE(source.stopped);
    off.enabled = true;
    ASSERT_FALSE(put(off).error);
    EXPECT_EQ(factory_.sources[uuid]->started_after, testing::orders(1, 3)[2].position);
    EXPECT_EQ(factory_.provisioned.size(), 1u) << "provisioned once, when created";
}

TEST_F(MappingsTest, AMappingComesBackAfterARestart) {
    const Outcome created = put(config("orders-fn", "orders"));
    ASSERT_FALSE(created.error);
    const std::string uuid = created.view->config.uuid;
    factory_.sources[uuid]->push(testing::orders(1, 2));
    ASSERT_TRUE(run_until([&] { return mappings_->get(uuid)->status.records_delivered == 2; }));
    close();
    store_ = std::make_unique<SqliteMappingStore>(dir_ / "funcd.db", *cipher_);
    open();
    ASSERT_TRUE(mappings_->get(uuid));
    EXPECT_EQ(factory_.sources[uuid]->started_after, testing::orders(1, 2)[1].position);
    EXPECT_EQ(mappings_->get(uuid)->config.connection, kConnection);
}

TEST_F(MappingsTest, LimitsAndWhatAnUpdateMayNotChange) {
    ASSERT_FALSE(put(config("orders-fn", "one")).error);
    ASSERT_FALSE(put(config("orders-fn", "two")).error);
    const Outcome third = put(config("orders-fn", "three"));
    ASSERT_TRUE(third.error);
    EXPECT_NE(third.error_message().find("event_sources.max_mappings_per_function"), std::string::npos);
    EXPECT_FALSE(put(config("other-fn", "one")).error) << "the limit is per function";

    MappingConfig moved = mappings_->find("orders-fn", "one")->config;
    moved.tables = {"public.other"};
    const Outcome changed = put(moved);
    ASSERT_TRUE(changed.error);
    EXPECT_NE(changed.error_message().find("tables"), std::string::npos) << changed.error_message();

    factory_.refuse_tables.insert("public.missing");
    MappingConfig missing = config("other-fn", "missing");
    missing.tables = {"public.missing"};
    const Outcome refused = put(missing);
    ASSERT_TRUE(refused.error);
    EXPECT_NE(refused.error_message().find("does not exist"), std::string::npos);
    EXPECT_FALSE(mappings_->find("other-fn", "missing")) << "a refused source leaves no mapping";
}

TEST_F(MappingsTest, DeletingAMappingOrItsFunctionDeprovisionsItsSource) {
    const std::string a = put(config("orders-fn", "a")).view->config.uuid;
    const std::string b = put(config("orders-fn", "b")).view->config.uuid;
    const std::string c = put(config("other-fn", "c")).view->config.uuid;
    std::optional<std::exception_ptr> removed;
    mappings_->remove(a, [&](std::exception_ptr e) { removed = e; });
    ASSERT_TRUE(run_until([&] { return removed.has_value(); }));
    EXPECT_FALSE(*removed);
    EXPECT_TRUE(factory_.sources[a]->stopped);
    mappings_->function_deleted("orders-fn");
    EXPECT_TRUE(factory_.sources[b]->stopped);
    settle();
    EXPECT_EQ(factory_.deprovisioned, (std::vector<std::string>{a, b}));
    ASSERT_EQ(store_->list().size(), 1u);
    EXPECT_EQ(store_->list()[0].config.uuid, c);
    std::optional<std::exception_ptr> unknown;
    mappings_->remove("no-such-uuid", [&](std::exception_ptr e) { unknown = e; });
    ASSERT_TRUE(run_until([&] { return unknown.has_value(); }));
    EXPECT_TRUE(*unknown);
}

// Nodes sharing a database: another node holds every lease while one is named.
class OtherNodeLeases final : public LeaseStore {
public:
    bool acquire(const std::string&, const std::string&, std::chrono::seconds) override {
        std::lock_guard lock(mutex_);
        ++asked;
        return other_.empty();
    }
    std::optional<std::string> holder(const std::string&) override {
        std::lock_guard lock(mutex_);
        if (other_.empty()) return std::nullopt;
        return other_;
    }
    void release(const std::string& name, const std::string&) override {
        std::lock_guard lock(mutex_);
        released_.push_back(name);
    }
    void held_by(std::string node) {
        std::lock_guard lock(mutex_);
        other_ = std::move(node);
    }
    std::vector<std::string> released() {
        std::lock_guard lock(mutex_);
        return released_;
    }

    std::atomic<int> asked{0};

private:
    std::mutex mutex_;
    std::string other_;
    std::vector<std::string> released_;
};

class SharedMappingsTest : public MappingsTest {
protected:
    void SetUp() override {
        ScratchDir::SetUp();
        store_ = std::make_unique<SqliteMappingStore>(dir_ / "funcd.db", *cipher_);
        delivery_.store = store_.get();
        EventSourceMappingsOptions o{"us-east-1", "000000000000", {}, {}, "node-a"};
        o.lease_renew = 20ms;
        mappings_ = std::make_unique<EventSourceMappings>(io_, blocking_, *store_, factory_, delivery_, o, &leases_);
        mappings_->start();
    }
    void TearDown() override {
        close();
        settle();  // the leases given up at stop
        ScratchDir::TearDown();
    }
    // What the daemon does when the shared state changed: the read on the blocking pool.
    void reload() {
        boost::asio::post(blocking_, [this] { mappings_->reload(); });
    }
    // Waits for `n` more leases to be asked for.
    void rounds(int n) {
        const int until = leases_.asked.load() + n;
        ASSERT_TRUE(run_until([&] { return leases_.asked.load() >= until; }));
        settle();
    }

    OtherNodeLeases leases_;
};

TEST_F(SharedMappingsTest, AMappingRunsOnlyWhileThisNodeHoldsItsLeaseAndResumesFromTheStoredCheckpoint) {
    leases_.held_by("node-b");
    const Outcome created = put(config("orders-fn", "orders"));
    ASSERT_FALSE(created.error) << created.error_message();
    const std::string uuid = created.view->config.uuid;
    EXPECT_EQ(created.view->state, "Enabled");
    rounds(2);
    EXPECT_FALSE(factory_.sources.contains(uuid)) << "node b holds its lease: no source here";
    EXPECT_EQ(mappings_->get(uuid)->node, "node-b");
    EXPECT_EQ(mappings_->get(uuid)->state, "Enabled");

    // Node b delivered up to here, then died; its lease expires and this node takes it.
    const ChangePosition reached = testing::orders(1, 4)[3].position;
    {
        std::atomic<bool> saved{false};
        boost::asio::post(blocking_, [&] { saved = store_->save_checkpoint(uuid, reached); });
        ASSERT_TRUE(run_until([&] { return saved.load(); }));
    }
    reload();
    settle();
    leases_.held_by("");
    ASSERT_TRUE(run_until([&] { return factory_.sources.contains(uuid); }));
    EXPECT_TRUE(factory_.sources[uuid]->started);
    EXPECT_EQ(factory_.sources[uuid]->started_after, reached) << "resumes after node b's checkpoint";
    EXPECT_EQ(mappings_->get(uuid)->node, "node-a");
    factory_.sources[uuid]->push(testing::orders(5, 2));
    ASSERT_TRUE(run_until([&] { return mappings_->get(uuid)->status.records_delivered == 2; }));

    // Another node took the lease (this one's expired unrenewed): the runner stops at once.
    leases_.held_by("node-c");
    ASSERT_TRUE(run_until([&] { return factory_.sources[uuid]->stopped; }));
    rounds(1);
    EXPECT_EQ(mappings_->get(uuid)->node, "node-c");
    EXPECT_EQ(mappings_->get(uuid)->state, "Enabled");
}

TEST_F(SharedMappingsTest, MappingsOtherNodesCreateChangeAndDeleteAreLearnedAtReload) {
    MappingConfig elsewhere = config("orders-fn", "orders");
    elsewhere.uuid = "made-on-node-b";
    {
        std::atomic<bool> stored{false};
        boost::asio::post(blocking_, [&] {
            store_->put(elsewhere);
            stored = true;
        });
        ASSERT_TRUE(run_until([&] { return stored.load(); }));
    }
    EXPECT_FALSE(mappings_->get("made-on-node-b"));
    reload();
    ASSERT_TRUE(run_until([&] { return mappings_->get("made-on-node-b").has_value(); }));
    // Nobody runs it: this node takes its lease at its next round.
    ASSERT_TRUE(run_until([&] { return factory_.sources.contains("made-on-node-b"); }));
    EXPECT_TRUE(factory_.sources["made-on-node-b"]->started);

    // Disabled on another node: it stops here and its lease is given up.
    elsewhere.enabled = false;
    boost::asio::post(blocking_, [&] { store_->put(elsewhere); });
    settle();
    reload();
    ASSERT_TRUE(run_until([&] { return mappings_->get("made-on-node-b")->state == "Disabled"; }));
    EXPECT_TRUE(factory_.sources["made-on-node-b"]->stopped);
    settle();
    EXPECT_EQ(leases_.released(), (std::vector<std::string>{mapping_lease_name("made-on-node-b")}));

    // Deleted on another node: gone here, its source left for that node to drop.
    boost::asio::post(blocking_, [&] { store_->remove("made-on-node-b"); });
    settle();
    reload();
    ASSERT_TRUE(run_until([&] { return !mappings_->get("made-on-node-b").has_value(); }));
    settle();
    EXPECT_TRUE(factory_.deprovisioned.empty());
}

// /v1 through its handler, as the control API routes it (the bearer token is checked before).
class EventSourceApiTest : public MappingsTest {
protected:
    void SetUp() override {
        MappingsTest::SetUp();
        code_ = std::make_unique<CodeStore>(dir_ / "code");
        views_ = std::make_unique<LayerViews>(dir_ / "opt", *code_);
        function_store_ = std::make_unique<SqliteFunctionStore>(dir_ / "funcd.db");
        registry_ = std::make_unique<Registry>(*function_store_, *code_, *views_, 100, *cipher_);
        FunctionConfig fc;
        fc.name = "orders-fn";
        fc.runtime = Runtime::python3;
        fc.runtime_id = "python3.12";
        fc.handler = "app.handler";
        registry_->update("orders-fn", [&](RecordChange& c) {
            StoredCode code = c.put_code(funcd::testing::ZipBuilder().file("app.py", "def handler(e, c): pass\n").build());
            set_latest(c, fc, &code, CodeCheck::entry_point);
        });
        api_ = std::make_unique<EventSourceApi>(*registry_, *mappings_);
    }
    void TearDown() override {
        api_.reset();
        registry_.reset();
        views_.reset();
        code_.reset();
        MappingsTest::TearDown();
    }
    // The answer to one request (an ApiError thrown while routing is answered as ControlApi does).
    http::Response call(const std::string& method, const std::string& path, const json& body = nullptr) {
        http::Request req;
        req.method = method;
        req.target = path;
        req.headers = {{"content-type", "application/json"}};
        if (!body.is_null()) req.body = body.dump();
        std::optional<http::Response> out;
        http::Responder respond = [&](http::Response r) { out = std::move(r); };
        try {
            if (!api_->handle(api::parse_target(req.target), req, respond)) return {404, {}, "{}", "application/json"};
        } catch (...) {
            out = api::response_for_current_exception();
        }
        EXPECT_TRUE(run_until([&] { return out.has_value(); }));
        return *out;
    }
    static json doc(const http::Response& r) { return json::parse(r.body); }

    std::unique_ptr<CodeStore> code_;
    std::unique_ptr<LayerViews> views_;
    std::unique_ptr<SqliteFunctionStore> function_store_;
    std::unique_ptr<Registry> registry_;
    std::unique_ptr<EventSourceApi> api_;
};

TEST_F(EventSourceApiTest, PutGetListDeleteWithTheConnectionRedacted) {
    const std::string path = "/v1/functions/orders-fn/event-sources/orders";
    const http::Response created = call("PUT", path, valid_body());
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(created.body.find("hunter2"), std::string::npos) << created.body;
    EXPECT_EQ(doc(created)["connection"], "host=db.internal port=5432 dbname=app user=app password=***");
    EXPECT_EQ(doc(created)["state"], "Enabled");
    EXPECT_EQ(doc(created)["tables"], json({"public.orders", "public.items"}));
    const http::Response got = call("GET", path);
    ASSERT_EQ(got.status, 200);
    EXPECT_EQ(got.body.find("hunter2"), std::string::npos) << got.body;
    for (const char* field : {"checkpoint", "lag_bytes", "seconds_behind", "last_error", "arn", "uuid"})
        EXPECT_TRUE(doc(got).contains(field)) << field;
    const http::Response list = call("GET", "/v1/functions/orders-fn/event-sources");
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(doc(list)["event_sources"].size(), 1u);
    EXPECT_EQ(list.body.find("hunter2"), std::string::npos);

    // A change of settings keeps the connection it does not repeat.
    json change = valid_body();
    change.erase("connection");
    change["batch_size"] = 10;
    const http::Response changed = call("PUT", path, change);
    ASSERT_EQ(changed.status, 200) << changed.body;
    EXPECT_EQ(doc(changed)["batch_size"], 10);
    EXPECT_EQ(mappings_->find("orders-fn", "orders")->config.connection, kConnection);

    const http::Response disabled = call("POST", path + "/disable");
    ASSERT_EQ(disabled.status, 200) << disabled.body;
    EXPECT_EQ(doc(disabled)["state"], "Disabled");
    EXPECT_EQ(doc(call("POST", path + "/enable"))["state"], "Enabled");

    EXPECT_EQ(call("DELETE", path).status, 204);
    EXPECT_EQ(call("GET", path).status, 404);
    EXPECT_EQ(call("DELETE", path).status, 404);
}

TEST_F(EventSourceApiTest, ADisabledMappingShowsWhatItsSlotHoldsAndAWarning) {
    const std::string path = "/v1/functions/orders-fn/event-sources/orders";
    ASSERT_EQ(call("PUT", path, valid_body()).status, 201);
    factory_.retained = 123456;
    EXPECT_FALSE(doc(call("GET", path)).contains("slot_retained_wal_bytes")) << "an enabled mapping shows no slot figure";

    ASSERT_EQ(call("POST", path + "/disable").status, 200);
    const json got = doc(call("GET", path));
    EXPECT_EQ(got["state"], "Disabled");
    EXPECT_EQ(got["slot_retained_wal_bytes"], 123456) << got;
    ASSERT_TRUE(got["warning"].is_string()) << got;
    EXPECT_NE(got["warning"].get<std::string>().find("max_slot_wal_keep_size"), std::string::npos);

    // A slot that holds nothing is shown without a warning; one that cannot be read as null.
    factory_.retained = 0;
    ASSERT_EQ(call("POST", path + "/enable").status, 200);
    ASSERT_EQ(call("POST", path + "/disable").status, 200);
    settle();
    json quiet = doc(call("GET", path));
    EXPECT_EQ(quiet["slot_retained_wal_bytes"], 0) << quiet;
    EXPECT_FALSE(quiet.contains("warning")) << quiet;
    factory_.retained_fails = true;
    ASSERT_EQ(call("POST", path + "/enable").status, 200);
    ASSERT_EQ(call("POST", path + "/disable").status, 200);
    settle();
    quiet = doc(call("GET", path));
    EXPECT_TRUE(quiet["slot_retained_wal_bytes"].is_null()) << quiet;
    EXPECT_EQ(quiet["state"], "Disabled");
}

TEST_F(EventSourceApiTest, BadRequestsAreRefusedNamingTheProblem) {
    const std::string path = "/v1/functions/orders-fn/event-sources/orders";
    json bad = valid_body();
    bad["batch_size"] = 0;
    http::Response r = call("PUT", path, bad);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(doc(r)["error"]["type"], "InvalidParameterValueException");
    EXPECT_NE(doc(r)["error"]["message"].get<std::string>().find("batch_size"), std::string::npos);
    bad = valid_body();
    bad["colour"] = "blue";
    r = call("PUT", path, bad);
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("colour"), std::string::npos);
    EXPECT_EQ(r.body.find("hunter2"), std::string::npos) << r.body;
    r = call("PUT", path, json("not an object"));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(call("PUT", "/v1/functions/orders-fn/event-sources/bad%20name", valid_body()).status, 400);
    EXPECT_EQ(call("PUT", "/v1/functions/nobody/event-sources/orders", valid_body()).status, 404);
    EXPECT_EQ(call("GET", "/v1/functions/orders-fn/event-sources/none").status, 404);
    EXPECT_EQ(call("PATCH", path, valid_body()).status, 405);
    EXPECT_EQ(call("GET", path + "/enable").status, 405);
}

}  // namespace
}  // namespace funcd
