// The registry: versions, aliases, layers and function-level settings, durable across a
// restart, and a failed change that leaves everything as it was.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/registry/legacy_function_table.hpp"
#include "funcd/registry/record_changes.hpp"
#include "funcd/registry/registry.hpp"
#include "funcd/registry/sqlite.hpp"
#include "funcd/state/sqlite_function_store.hpp"
#include "zip_builder.hpp"

using namespace funcd;
using funcd::testing::ZipBuilder;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

FunctionConfig python_config(const std::string& name) {
    FunctionConfig c;
    c.name = name;
    c.runtime = Runtime::python3;
    c.runtime_id = "python3.12";
    c.handler = "app.handler";
    return c;
}

std::string app_zip(const std::string& body) { return ZipBuilder().file("app.py", body).build(); }

class RegistryTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("funcd-registry-" + random_hex(6));
        fs::create_directories(dir_);
        open();
    }
    void TearDown() override {
        registry_.reset();
        views_.reset();
        code_.reset();
        std::error_code ec;
        // Stored code is read-only.
        for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec))
            if (it->is_directory()) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(dir_, ec);
    }

    void open() {
        registry_.reset();
        views_.reset();
        code_.reset();
        cipher_ = std::make_unique<EnvCipher>(EnvCipher::load(dir_ / "env.keys"));
        code_ = std::make_unique<CodeStore>(dir_ / "code");
        views_ = std::make_unique<LayerViews>(dir_ / "opt", *code_);
        open_registry();
    }

    // The registry on the data directory's database again, as a restart opens it.
    void open_registry() {
        registry_.reset();
        store_ = std::make_unique<SqliteFunctionStore>(dir_ / "funcd.db");
        migrate_legacy_function_table(dir_ / "funcd.db", *store_, *cipher_);
        registry_ = std::make_unique<Registry>(*store_, *code_, *views_, 100, *cipher_);
    }

    // Lambda's CreateFunction / UpdateFunctionCode: a new $LATEST, published when asked.
    FunctionRecordPtr put(const std::string& name, const std::string& zip, bool publish,
                          FunctionConfig config = {}) {
        if (config.name.empty()) config = python_config(name);
        return registry_->update(name, [&](RecordChange& c) {
            StoredCode code = c.put_code(zip);
            set_latest(c, config, &code, CodeCheck::entry_point);
            if (publish) publish_latest(*c.record, std::nullopt, true);
        });
    }

    fs::path dir_;
    std::unique_ptr<CodeStore> code_;
    std::unique_ptr<LayerViews> views_;
    std::unique_ptr<EnvCipher> cipher_;
    std::unique_ptr<SqliteFunctionStore> store_;
    std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTest, PublishesImmutableVersionsAndReusesAnUnchangedLatest) {
    auto r = put("f", app_zip("def handler(e, c): return 1\n"), true);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->versions.size(), 1u);
    EXPECT_EQ(r->default_target()->version, 1);
    const std::string v1_code = r->version(1)->code_sha256;

    // Publishing an unchanged $LATEST returns the existing version, as Lambda does.
    r = registry_->update("f", [](RecordChange& c) { publish_latest(*c.record, std::nullopt, true); });
    EXPECT_EQ(r->versions.size(), 1u);

    // New code: $LATEST changes, version 1 keeps its code; /v1 runs $LATEST until published.
    r = put("f", app_zip("def handler(e, c): return 2\n"), false);
    EXPECT_NE(r->latest->code_sha256, v1_code);
    EXPECT_EQ(r->version(1)->code_sha256, v1_code);
    EXPECT_TRUE(r->default_target()->is_latest());
    const auto generation = r->latest->generation;

    r = registry_->update("f", [](RecordChange& c) { publish_latest(*c.record, std::string("second"), true); });
    ASSERT_EQ(r->versions.size(), 2u);
    EXPECT_EQ(r->version(2)->config.description, "second");
    EXPECT_EQ(r->default_target()->version, 2);
    EXPECT_EQ(r->latest->generation, generation) << "publishing does not change $LATEST";

    // Settings-only change: a new $LATEST generation on the same code.
    r = registry_->update("f", [&](RecordChange& c) {
        FunctionConfig config = c.record->latest->config;
        config.memory_mb = 512;
        set_latest(c, config, nullptr, CodeCheck::entry_point);
    });
    EXPECT_EQ(r->latest->config.memory_mb, 512);
    EXPECT_EQ(r->latest->code_sha256, r->version(2)->code_sha256);
    EXPECT_GT(r->latest->generation, generation);
    EXPECT_EQ(r->version(2)->config.memory_mb, 128);
}

TEST_F(RegistryTest, AliasesRouteByWeightAndProtectTheirVersions) {
    put("f", app_zip("def handler(e, c): return 1\n"), true);
    put("f", app_zip("def handler(e, c): return 2\n"), true);
    auto r = registry_->update("f", [](RecordChange& c) {
        Alias a;
        a.name = "live";
        a.function_version = 1;
        a.additional_version = std::make_pair(2, 0.25);
        c.record->aliases[a.name] = a;
    });
    Qualifier live = *Qualifier::parse("live");
    EXPECT_EQ(resolve(*r, live, 0.10)->version, 2) << "a draw under the weight goes to the additional version";
    EXPECT_EQ(resolve(*r, live, 0.25)->version, 1);
    EXPECT_EQ(resolve(*r, live, 0.99)->version, 1);
    EXPECT_EQ(resolve(*r, *Qualifier::parse("$LATEST"), 0.5)->version, kLatestVersion);
    EXPECT_EQ(resolve(*r, *Qualifier::parse("2"), 0.5)->version, 2);
    EXPECT_FALSE(resolve(*r, *Qualifier::parse("3"), 0.5));
    EXPECT_FALSE(resolve(*r, *Qualifier::parse("nope"), 0.5));

    EXPECT_THROW(registry_->update("f", [](RecordChange& c) { delete_version(*c.record, 2); }), ApiError)
        << "an alias routes to version 2";
    EXPECT_EQ(registry_->find("f")->versions.size(), 2u) << "a refused change changes nothing";
}

TEST_F(RegistryTest, QualifiersParseAsLambdaNamesThem) {
    EXPECT_EQ(Qualifier::parse("$LATEST")->kind, Qualifier::Kind::latest);
    EXPECT_EQ(Qualifier::parse("12")->kind, Qualifier::Kind::version);
    EXPECT_EQ(Qualifier::parse("12")->number, 12);
    EXPECT_EQ(Qualifier::parse("prod-1")->kind, Qualifier::Kind::alias);
    for (const char* bad : {"", "0", "$latest", "a b", "a:b"}) EXPECT_FALSE(Qualifier::parse(bad)) << bad;
    EXPECT_FALSE(Qualifier::parse(std::string(129, 'a')));
}

TEST_F(RegistryTest, FunctionLevelSettingsReachEveryVersion) {
    put("f", app_zip("def handler(e, c): return 1\n"), true);
    auto r = registry_->update("f", [](RecordChange& c) {
        c.record->reserved_concurrency = 7;
        c.record->provisioned["1"] = {2, std::chrono::system_clock::now()};
    });
    EXPECT_EQ(r->latest->config.concurrency.reserved, 7);
    EXPECT_EQ(r->version(1)->config.concurrency.reserved, 7);
    EXPECT_EQ(r->version(1)->config.concurrency.provisioned, 2);
    EXPECT_EQ(r->latest->config.concurrency.provisioned, 0);
    // Over --max-concurrency (100 here) in sum: refused, nothing changes.
    put("g", app_zip("def handler(e, c): return 1\n"), false);
    EXPECT_THROW(registry_->update("g", [](RecordChange& c) { c.record->reserved_concurrency = 94; }), ApiError);
    EXPECT_FALSE(registry_->find("g")->reserved_concurrency);
    EXPECT_EQ(registry_->reserved_total(), 7);
}

TEST_F(RegistryTest, EverythingSurvivesARestart) {
    put("f", app_zip("def handler(e, c): return 1\n"), true);
    registry_->update("f", [](RecordChange& c) {
        c.record->tags["team"] = "a";
        c.record->aliases["live"] = Alias{"live", 1, "desc", std::nullopt, "rev"};
        c.record->urls[""] = FunctionUrlConfig{UrlAuthType::aws_iam, {}, "BUFFERED", {}, {}};
        c.record->policies[""].push_back({{"Sid", "s1"}, {"Effect", "Allow"}});
    });
    const auto before = registry_->find("f");
    open();
    const auto after = registry_->find("f");
    ASSERT_TRUE(after);
    EXPECT_EQ(to_json(*after), to_json(*before));
    EXPECT_EQ(after->version(1)->code_dir, before->version(1)->code_dir);
    EXPECT_EQ(read_file(after->latest->code_dir / "app.py"), "def handler(e, c): return 1\n");
}

TEST_F(RegistryTest, AFailedChangeKeepsNoCode) {
    put("f", app_zip("def handler(e, c): return 1\n"), true);
    const std::string zip = app_zip("def handler(e, c): return 'never'\n");
    const std::string sha = sha256_hex(zip);
    EXPECT_THROW(registry_->update("f",
                                   [&](RecordChange& c) {
                                       StoredCode code = c.put_code(zip);
                                       ASSERT_TRUE(fs::exists(code.dir));
                                       throw ApiError::bad_parameter("refused");
                                   }),
                 ApiError);
    EXPECT_FALSE(fs::exists(code_->dir_for(sha)));
    EXPECT_FALSE(fs::exists(code_->zip_for(sha)));
    EXPECT_EQ(registry_->find("f")->versions.size(), 1u);
}

TEST_F(RegistryTest, KeepsTheUploadedZipByteForByte) {
    const std::string zip = app_zip("def handler(e, c): return 1\n");
    auto r = put("f", zip, false);
    EXPECT_EQ(read_file(code_->zip_for(r->latest->code_sha256)), zip);
    EXPECT_EQ(r->latest->code_sha256, sha256_hex(zip));
}

TEST_F(RegistryTest, LayersMergeInOrderAndOutliveTheirDeletion) {
    LayerVersion meta;
    meta.name = "tools";
    auto one = registry_->publish_layer(meta, ZipBuilder().file("bin/tool", "one", 0755).file("a.txt", "A1").build());
    auto two = registry_->publish_layer(meta, ZipBuilder().file("bin/tool", "two", 0755).file("b.txt", "B2").build());
    EXPECT_EQ(one->version, 1);
    EXPECT_EQ(two->version, 2);
    LayerVersion other;
    other.name = "data";
    auto three = registry_->publish_layer(other, ZipBuilder().file("a.txt", "A3").dir("bin").build());

    FunctionConfig config = python_config("f");
    config.layers = {{one->name, one->version, one->code_sha256, one->code_size},
                     {three->name, three->version, three->code_sha256, three->code_size}};
    auto r = put("f", app_zip("def handler(e, c): return 1\n"), true, config);
    const fs::path view = r->latest->opt_dir;
    ASSERT_FALSE(view.empty());
    EXPECT_EQ(read_file(view / "a.txt"), "A3") << "the later layer wins";
    EXPECT_EQ(read_file(view / "bin" / "tool"), "one");
    EXPECT_EQ(r->version(1)->opt_dir, view) << "versions with the same layers share one view";

    // Deleted: no longer listed or usable, but the function keeps it.
    EXPECT_TRUE(registry_->delete_layer("tools", 1));
    EXPECT_FALSE(registry_->delete_layer("tools", 1));
    EXPECT_EQ(registry_->list_layers("tools").size(), 1u);
    registry_->collect_code_garbage({});
    EXPECT_TRUE(fs::exists(code_->dir_for(one->code_sha256)));
    EXPECT_EQ(read_file(view / "bin" / "tool"), "one");
    // Numbers are never given twice.
    EXPECT_EQ(registry_->publish_layer(meta, ZipBuilder().file("c", "c").build())->version, 3);

    // Once no function uses it, its code and the view go.
    registry_->update("f", [](RecordChange& c) { c.record.reset(); });
    registry_->collect_code_garbage({});
    EXPECT_FALSE(fs::exists(code_->dir_for(one->code_sha256)));
    EXPECT_FALSE(fs::exists(view));
    EXPECT_TRUE(fs::exists(code_->dir_for(two->code_sha256))) << "a live layer version keeps its code";
}

TEST_F(RegistryTest, MergeReplacesAFileWithADirectoryAndBack) {
    const fs::path a = dir_ / "a", b = dir_ / "b", out = dir_ / "merged";
    fs::create_directories(a / "x");
    std::ofstream(a / "x" / "inner") << "in a";
    std::ofstream(a / "y") << "file in a";
    fs::create_directories(b / "y");
    std::ofstream(b / "x") << "file in b";
    std::ofstream(b / "y" / "inner") << "in b";
    merge_trees({a, b}, out);
    EXPECT_TRUE(fs::is_regular_file(out / "x"));
    EXPECT_EQ(read_file(out / "x"), "file in b");
    EXPECT_TRUE(fs::is_directory(out / "y"));
    EXPECT_EQ(read_file(out / "y" / "inner"), "in b");
}

TEST_F(RegistryTest, AnUnreadableRecordKeepsItsCode) {
    auto r = put("f", app_zip("def handler(e, c): return 1\n"), true);
    const std::string sha = r->latest->code_sha256;
    registry_.reset();
    {
        // A record a later funcd wrote with a runtime this one does not know.
        sqlite::Database db(dir_ / "funcd.db");
        sqlite::Statement q(db, "SELECT doc FROM function_records WHERE name = 'f'");
        ASSERT_TRUE(q.step());
        std::string doc = q.column_text(0);
        for (std::size_t at; (at = doc.find("\"python3.12\"")) != std::string::npos;)
            doc.replace(at, 12, "\"python9.99\"");
        sqlite::Statement u(db, "UPDATE function_records SET doc = ?1 WHERE name = 'f'");
        u.bind(1, doc).run();
    }
    open_registry();
    EXPECT_FALSE(registry_->find("f")) << "not served";
    registry_->collect_code_garbage({});
    EXPECT_TRUE(fs::exists(code_->dir_for(sha))) << "but its code is not collected";
    EXPECT_TRUE(fs::exists(code_->zip_for(sha)));
}

TEST_F(RegistryTest, MigratesASingleVersionDataDirectory) {
    registry_.reset();
    const std::string zip = app_zip("def handler(e, c): return 'old'\n");
    StoredCode stored = code_->put(zip);
    {
        sqlite::Database db(dir_ / "funcd.db");
        db.exec("DROP TABLE IF EXISTS function_records");
        db.exec(R"sql(CREATE TABLE functions (name TEXT PRIMARY KEY, version INTEGER NOT NULL,
            config_json TEXT NOT NULL, code_sha256 TEXT NOT NULL, code_size INTEGER NOT NULL,
            last_modified_us INTEGER NOT NULL))sql");
        const std::string config =
            R"({"runtime":"python3","handler":"app.handler","memory_mb":256,"timeout_s":3,"env":{"AB":"b"},)"
            R"("keep_alive_s":600,"concurrency":{"reserved_concurrency":4,"provisioned_concurrency":1}})";
        sqlite::Statement insert(db, "INSERT INTO functions VALUES ('old', 5, ?1, ?2, ?3, 1700000000000000)");
        insert.bind(1, config).bind(2, stored.sha256).bind(3, stored.size);
        insert.run();
    }
    store_.reset();
    open_registry();
    auto r = registry_->find("old");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->default_target()->version, 5) << "/v1 goes on reporting the version it deployed";
    EXPECT_EQ(r->last_published, 5);
    EXPECT_EQ(r->latest->config.memory_mb, 256);
    EXPECT_EQ(r->latest->config.env.at("AB"), "b");
    EXPECT_EQ(r->reserved_concurrency, 4);
    EXPECT_EQ(r->default_provisioned, 1);
    EXPECT_EQ(r->version(5)->config.concurrency.provisioned, 1);
    // The next publish continues the numbering.
    r = registry_->update("old", [](RecordChange& c) {
        FunctionConfig config = c.record->latest->config;
        config.memory_mb = 512;
        set_latest(c, config, nullptr, CodeCheck::entry_point);
        publish_latest(*c.record, std::nullopt, true);
    });
    EXPECT_EQ(r->default_target()->version, 6);
    sqlite::Database db(dir_ / "funcd.db");
    sqlite::Statement gone(db, "SELECT 1 FROM sqlite_master WHERE name = 'functions'");
    EXPECT_FALSE(gone.step()) << "the old table is dropped";
}

// Environments are sealed in the database: neither a value nor a key name is readable
// there, and they come back intact after a restart.
TEST_F(RegistryTest, EnvironmentsAreSealedAtRest) {
    FunctionConfig config = python_config("secretive");
    config.env = {{"DB_PASSWORD", "hunter2-very-secret"}, {"REGION_NAME", "north"}};
    put("secretive", app_zip("def handler(e, c): return 1\n"), /*publish=*/true, config);
    registry_.reset();
    {
        sqlite::Database db(dir_ / "funcd.db");
        sqlite::Statement q(db, "SELECT doc FROM function_records WHERE name = 'secretive'");
        ASSERT_TRUE(q.step());
        const std::string doc = q.column_text(0);
        EXPECT_EQ(doc.find("hunter2"), std::string::npos) << doc;
        EXPECT_EQ(doc.find("DB_PASSWORD"), std::string::npos) << doc;
        EXPECT_NE(doc.find("aes-256-gcm"), std::string::npos) << doc;
    }
    const auto mode = fs::status(dir_ / "env.keys").permissions();
    EXPECT_EQ(mode & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
    open();
    auto r = registry_->find("secretive");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->latest->config.env.at("DB_PASSWORD"), "hunter2-very-secret");
    EXPECT_EQ(r->version(1)->config.env.at("REGION_NAME"), "north");
}

// A sealed environment moved into another function's record does not open there.
TEST_F(RegistryTest, ASealedEnvironmentOnlyOpensForItsFunction) {
    FunctionConfig a = python_config("a");
    a.env = {{"KEY_A", "from-a"}};
    put("a", app_zip("def handler(e, c): return 1\n"), false, a);
    put("b", app_zip("def handler(e, c): return 2\n"), false);
    registry_.reset();
    {
        sqlite::Database db(dir_ / "funcd.db");
        sqlite::Statement qa(db, "SELECT doc FROM function_records WHERE name = 'a'");
        ASSERT_TRUE(qa.step());
        auto doc_a = nlohmann::json::parse(qa.column_text(0));
        sqlite::Statement qb(db, "SELECT doc FROM function_records WHERE name = 'b'");
        ASSERT_TRUE(qb.step());
        auto doc_b = nlohmann::json::parse(qb.column_text(0));
        doc_b["latest"]["config"]["env"] = doc_a["latest"]["config"]["env"];
        sqlite::Statement u(db, "UPDATE function_records SET doc = ?1 WHERE name = 'b'");
        u.bind(1, doc_b.dump()).run();
    }
    open();
    EXPECT_TRUE(registry_->find("a"));
    EXPECT_FALSE(registry_->find("b")) << "its environment does not verify";
}

// Rotation: a new key is added; at the next start every record is sealed with it and the
// old key leaves the keyring. A record in plain text (older data) is sealed the same way.
TEST_F(RegistryTest, RotatingTheKeyResealsEveryRecord) {
    FunctionConfig config = python_config("f");
    config.env = {{"TOKEN", "t0ps3cret"}};
    put("f", app_zip("def handler(e, c): return 1\n"), true, config);
    const std::string old_key = cipher_->current_key_id();
    registry_.reset();
    const std::string new_key = EnvCipher::rotate(dir_ / "env.keys");
    ASSERT_NE(new_key, old_key);
    open();
    EXPECT_EQ(registry_->find("f")->latest->config.env.at("TOKEN"), "t0ps3cret");
    registry_.reset();
    {
        sqlite::Database db(dir_ / "funcd.db");
        sqlite::Statement q(db, "SELECT doc FROM function_records WHERE name = 'f'");
        ASSERT_TRUE(q.step());
        const std::string doc = q.column_text(0);
        EXPECT_NE(doc.find(new_key), std::string::npos);
        EXPECT_EQ(doc.find("\"" + old_key + "\""), std::string::npos);
    }
    std::ifstream keys(dir_ / "env.keys");
    std::string text((std::istreambuf_iterator<char>(keys)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.find(old_key + " "), std::string::npos) << "the old key is dropped once unused";
    EXPECT_EQ(text.rfind(new_key + " ", 0), 0u);
    open();
    EXPECT_EQ(registry_->find("f")->latest->config.env.at("TOKEN"), "t0ps3cret");
}

}  // namespace

namespace {

// Code zips shared by nodes, in memory: the test's stand-in for PostgreSQL's funcd_code
// (the real one runs in tests/integration/postgres_state_test.cpp).
class MemoryCodeBlobs final : public CodeBlobStore {
public:
    bool touch(const std::string& sha256) override {
        std::lock_guard lock(mutex_);
        return zips_.count(sha256) > 0;
    }
    // Records what it was asked, and removes what `in_use` does not name (no grace: the
    // real store's is tested on PostgreSQL).
    std::size_t collect(const std::set<std::string>& in_use, std::chrono::seconds grace) override {
        std::lock_guard lock(mutex_);
        ++collections;
        last_grace = grace;
        return std::erase_if(zips_, [&](const auto& z) { return !in_use.contains(z.first); });
    }
    bool holds(const std::string& sha256) {
        std::lock_guard lock(mutex_);
        return zips_.count(sha256) > 0;
    }
    int collections = 0;
    std::chrono::seconds last_grace{0};
    void put(const std::string& sha256, std::string_view zip) override {
        std::lock_guard lock(mutex_);
        zips_.emplace(sha256, std::string(zip));
    }
    std::optional<std::string> get(const std::string& sha256) override {
        std::lock_guard lock(mutex_);
        auto it = zips_.find(sha256);
        if (it == zips_.end()) return std::nullopt;
        return it->second;
    }
    std::size_t size() {
        std::lock_guard lock(mutex_);
        return zips_.size();
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::string> zips_;
};

// One node: its own code and views directories, the state shared with the other.
struct RegistryNode {
    RegistryNode(const fs::path& dir, const fs::path& db, const EnvCipher& cipher, CodeBlobStore& blobs)
        : store(db), code(dir / "code"), views(dir / "opt", code), registry(store, code, views, 100, cipher, &blobs) {}
    SqliteFunctionStore store;
    CodeStore code;
    LayerViews views;
    Registry registry;
};

}  // namespace

// Two nodes on one state: what one changes, the other reads with refresh(), code included;
// each announces only the other's changes, once.
class TwoNodeRegistryTest : public RegistryTest {
protected:
    void SetUp() override {
        RegistryTest::SetUp();
        registry_.reset();
        a_ = std::make_unique<RegistryNode>(dir_ / "a", dir_ / "shared.db", *cipher_, blobs_);
        b_ = std::make_unique<RegistryNode>(dir_ / "b", dir_ / "shared.db", *cipher_, blobs_);
    }
    void TearDown() override {
        a_.reset();
        b_.reset();
        RegistryTest::TearDown();
    }
    static FunctionRecordPtr deploy(Registry& r, const std::string& name, const std::string& zip, bool publish) {
        return r.update(name, [&](RecordChange& c) {
            StoredCode code = c.put_code(zip);
            set_latest(c, python_config(name), &code, CodeCheck::entry_point);
            if (publish) publish_latest(*c.record, std::nullopt, true);
        });
    }

    MemoryCodeBlobs blobs_;
    std::unique_ptr<RegistryNode> a_;
    std::unique_ptr<RegistryNode> b_;
};

TEST_F(TwoNodeRegistryTest, ADeployOnOneNodeIsReadByTheOtherWithItsCode) {
    const auto deployed = deploy(a_->registry, "f", app_zip("def handler(e, c): return 'from a'\n"), true);
    EXPECT_EQ(blobs_.size(), 1u) << "the zip is shared before the record naming it";
    EXPECT_TRUE(a_->registry.refresh().empty()) << "a node does not announce its own change";
    EXPECT_FALSE(b_->registry.find("f"));

    const RegistryChanges found = b_->registry.refresh();
    ASSERT_EQ(found.changed.size(), 1u);
    EXPECT_TRUE(found.deleted.empty());
    const auto seen = found.changed[0];
    EXPECT_EQ(seen->name, "f");
    EXPECT_EQ(seen->latest->code_sha256, deployed->latest->code_sha256);
    EXPECT_EQ(read_file(seen->latest->code_dir / "app.py"), "def handler(e, c): return 'from a'\n")
        << "unpacked into b's own code directory";
    EXPECT_EQ(seen->latest->code_dir.parent_path(), dir_ / "b" / "code");
    EXPECT_EQ(b_->registry.find("f"), seen);
    EXPECT_TRUE(b_->registry.refresh().empty()) << "announced once";

    // Deleted through b: a reads the deletion.
    b_->registry.update("f", [](RecordChange& c) { c.record.reset(); });
    const RegistryChanges gone = a_->registry.refresh();
    EXPECT_TRUE(gone.changed.empty());
    EXPECT_EQ(gone.deleted, std::vector<std::string>{"f"});
    EXPECT_FALSE(a_->registry.find("f"));
}

TEST_F(TwoNodeRegistryTest, SharedZipsNoVersionNamesAreCollectedAtMostOnceAnInterval) {
    const auto v1 = deploy(a_->registry, "f", app_zip("def handler(e, c): return 1\n"), true);
    const auto latest = deploy(a_->registry, "f", app_zip("def handler(e, c): return 2\n"), false);
    const auto gone = deploy(a_->registry, "g", app_zip("def handler(e, c): return 3\n"), false);
    a_->registry.update("g", [](RecordChange& c) { c.record.reset(); });
    ASSERT_EQ(blobs_.size(), 3u);
    b_->registry.refresh();
    b_->registry.collect_code_garbage({});
    EXPECT_EQ(blobs_.collections, 1);
    EXPECT_EQ(blobs_.last_grace, kSharedCodeGrace);
    EXPECT_TRUE(blobs_.holds(v1->latest->code_sha256)) << "version 1 still names it";
    EXPECT_TRUE(blobs_.holds(latest->latest->code_sha256));
    EXPECT_FALSE(blobs_.holds(gone->latest->code_sha256)) << "its function was deleted";
    b_->registry.collect_code_garbage({});
    a_->registry.collect_code_garbage({});
    EXPECT_EQ(blobs_.collections, 2) << "once per node per interval";
}

TEST_F(TwoNodeRegistryTest, ChangesOfOneFunctionOnBothNodesAreBothKept) {
    deploy(a_->registry, "f", app_zip("def handler(e, c): return 1\n"), true);
    b_->registry.refresh();
    // Both publish a new version without having read the other's: version numbers stay unique.
    deploy(a_->registry, "f", app_zip("def handler(e, c): return 2\n"), true);
    const auto on_b = deploy(b_->registry, "f", app_zip("def handler(e, c): return 3\n"), true);
    ASSERT_EQ(on_b->versions.size(), 3u) << "b's edit ran again on a's change";
    EXPECT_EQ(read_file(on_b->version(2)->code_dir / "app.py"), "def handler(e, c): return 2\n");
    EXPECT_EQ(read_file(on_b->version(3)->code_dir / "app.py"), "def handler(e, c): return 3\n");
    a_->registry.refresh();
    EXPECT_EQ(a_->registry.find("f")->versions.size(), 3u);
    EXPECT_EQ(a_->registry.find("f")->version(3)->code_sha256, on_b->version(3)->code_sha256);
}

TEST_F(TwoNodeRegistryTest, LayersPublishedOnEitherNodeAreNumberedOnceAndReadByTheOther) {
    LayerVersion meta;
    meta.name = "tools";
    const auto one = a_->registry.publish_layer(meta, ZipBuilder().file("a.txt", "A1").build());
    const auto two = b_->registry.publish_layer(meta, ZipBuilder().file("a.txt", "B2").build());
    EXPECT_EQ(one->version, 1);
    EXPECT_EQ(two->version, 2);
    a_->registry.refresh();
    ASSERT_TRUE(a_->registry.find_layer("tools", 2));
    EXPECT_EQ(a_->registry.find_layer("tools", 2)->code_sha256, two->code_sha256);
    EXPECT_TRUE(a_->registry.delete_layer("tools", 2));
    b_->registry.refresh();
    EXPECT_TRUE(b_->registry.find_layer("tools", 2)->deleted);
    // A function on a uses b's layer: its view is built from the code a fetched.
    FunctionConfig config = python_config("f");
    config.layers = {{one->name, one->version, one->code_sha256, one->code_size}};
    b_->registry.update("f", [&](RecordChange& c) {
        StoredCode code = c.put_code(app_zip("def handler(e, c): return 1\n"));
        set_latest(c, config, &code, CodeCheck::entry_point);
    });
    a_->registry.refresh();
    ASSERT_TRUE(a_->registry.find("f"));
    EXPECT_EQ(read_file(a_->registry.find("f")->latest->opt_dir / "a.txt"), "A1");
}
